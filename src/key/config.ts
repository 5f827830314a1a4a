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
