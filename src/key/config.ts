/**
 * The `config` component: free text or a YAML mapping of build configuration. A mapping is
 * hashed as canonical JSON (keys sorted by byte order at every level), so reordering keys or
 * reformatting the YAML keeps the key; anything else is hashed as normalised text.
 */
import { isCollection, isMap, parseDocument, visit } from 'yaml';
import { sha256 } from '../util/bytes.js';
import { canonicalJson, displayValue, NotJsonData, normaliseText } from './canonical.js';
import type { KeyComponent } from './types.js';

export interface CanonicalConfig {
  /** 'yaml' when the text was a YAML mapping of plain data, else 'text'. */
  readonly form: 'yaml' | 'text';
  /** Canonical JSON for 'yaml', normalised text for 'text'. */
  readonly text: string;
}

export function canonicalConfig(config: string): CanonicalConfig {
  const json = yamlMappingAsJson(config);
  if (json !== undefined) return { form: 'yaml', text: json };
  return { form: 'text', text: normaliseText(config) };
}

export function configComponent(config: string): KeyComponent {
  const canonical = canonicalConfig(config);
  return {
    kind: 'config',
    name: 'config',
    // The form is part of what is hashed, so text that equals some mapping's JSON differs.
    hash: sha256(`${canonical.form}\n${canonical.text}`),
    value: displayValue(canonical.text),
  };
}

/** Canonical JSON of `text` if it is one YAML document holding a mapping of plain data. */
function yamlMappingAsJson(text: string): string | undefined {
  let doc;
  try {
    doc = parseDocument(text, { uniqueKeys: true });
  } catch {
    return undefined;
  }
  if (doc.errors.length > 0 || doc.warnings.length > 0) return undefined;
  if (!isMap(doc.contents)) return undefined;
  // A key that is itself a collection ("? [a, b]") is stringified by toJS with a process
  // warning; such a document is better hashed as text.
  let complexKey = false;
  visit(doc, {
    Pair(_key, pair) {
      if (isCollection(pair.key)) {
        complexKey = true;
        return visit.BREAK;
      }
      return undefined;
    },
  });
  if (complexKey) return undefined;
  try {
    return canonicalJson(doc.toJS({ maxAliasCount: 100 }));
  } catch (err) {
    if (err instanceof NotJsonData || err instanceof ReferenceError) return undefined;
    throw err;
  }
}

/**
 * The config values by path (`a.b.c` -> canonical JSON of the leaf) when the config is a YAML
 * mapping, so explain can name a changed flag; undefined for text. Sequences are leaves.
 */
export function flattenConfig(config: string): Record<string, string> | undefined {
  const canonical = canonicalConfig(config);
  if (canonical.form !== 'yaml') return undefined;
  const out: Record<string, string> = {};
  const visitValue = (prefix: string, value: unknown) => {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const entries = Object.entries(value as Record<string, unknown>);
      if (entries.length > 0 || prefix === '') {
        for (const [k, v] of entries) visitValue(prefix === '' ? k : `${prefix}.${k}`, v);
        return;
      }
    }
    Object.defineProperty(out, prefix, {
      value: canonicalJson(value),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  };
  visitValue('', JSON.parse(canonical.text) as unknown);
  return out;
}
