/**
 * Lockfile formats that can be read as a resolved dependency set. Each parser returns the
 * resolved packages (`name`, `version`, and the integrity/checksum where the format has one);
 * the lockfile component then hashes the sorted, de-duplicated set instead of the bytes, so a
 * reformatted lockfile with the same versions keeps the key. A parser throws on anything it
 * does not understand; the caller then falls back to the raw bytes.
 */
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';

export interface Resolved {
  readonly name: string;
  readonly version: string;
  /** Integrity hash or checksum, '' when the format has none for this entry. */
  readonly integrity: string;
}

export type LockfileParser = (text: string) => Resolved[];

/** Parser by file name (basename). */
export function parserFor(basename: string): { format: string; parse: LockfileParser } | undefined {
  switch (basename) {
    case 'package-lock.json':
    case 'npm-shrinkwrap.json':
      return { format: 'npm', parse: parseNpm };
    case 'yarn.lock':
      return { format: 'yarn', parse: parseYarn };
    case 'pnpm-lock.yaml':
      return { format: 'pnpm', parse: parsePnpm };
    case 'Cargo.lock':
      return { format: 'cargo', parse: (t) => tomlPackages(t, cargoIntegrity) };
    case 'poetry.lock':
    case 'pdm.lock':
      return { format: 'python-files', parse: (t) => tomlPackages(t, filesIntegrity) };
    case 'uv.lock':
      return { format: 'uv', parse: (t) => tomlPackages(t, uvIntegrity) };
    case 'composer.lock':
      return { format: 'composer', parse: parseComposer };
    case 'Pipfile.lock':
      return { format: 'pipenv', parse: parsePipfile };
    case 'packages.lock.json':
      return { format: 'nuget', parse: parseNuget };
    case 'go.sum':
    case 'go.work.sum':
      return { format: 'go.sum', parse: parseGoSum };
    case 'gradle.lockfile':
    case 'buildscript-gradle.lockfile':
      return { format: 'gradle', parse: parseGradle };
    default:
      return undefined;
  }
}

// ---- helpers ---------------------------------------------------------------------------------

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: unknown, what: string): Obj {
  if (!isObj(v)) throw new Error(`${what} is not a mapping`);
  return v;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
}

function need(v: unknown, what: string): string {
  const s = str(v);
  if (s === '') throw new Error(`missing ${what}`);
  return s;
}

function entry(name: string, version: string, integrity = ''): Resolved {
  return { name, version, integrity };
}

/** `@scope/name@range` or `name@range` -> name (the last `@` that is not the first character). */
function nameOfSpec(spec: string): string {
  const at = spec.indexOf('@', 1);
  return at < 0 ? spec : spec.slice(0, at);
}

// ---- JavaScript ------------------------------------------------------------------------------

function parseNpm(text: string): Resolved[] {
  const doc = obj(JSON.parse(text), 'package-lock');
  const out: Resolved[] = [];
  if (isObj(doc['packages'])) {
    // v2/v3: "node_modules/a/node_modules/@s/b" -> entry; "" is the root project itself.
    for (const [loc, raw] of Object.entries(doc['packages'])) {
      if (loc === '') continue;
      const e = obj(raw, loc);
      const idx = loc.lastIndexOf('node_modules/');
      const name = str(e['name']) || (idx >= 0 ? loc.slice(idx + 'node_modules/'.length) : loc);
      const version = e['link'] === true ? `link:${str(e['resolved'])}` : str(e['version']);
      out.push(entry(name, version, str(e['integrity'])));
    }
    return out;
  }
  // v1: nested "dependencies" maps.
  const visit = (deps: unknown) => {
    if (deps === undefined) return;
    for (const [name, raw] of Object.entries(obj(deps, 'dependencies'))) {
      const e = obj(raw, name);
      out.push(entry(name, need(e['version'], `version of ${name}`), str(e['integrity'])));
      visit(e['dependencies']);
    }
  };
  if (doc['dependencies'] === undefined) throw new Error('neither packages nor dependencies');
  visit(doc['dependencies']);
  return out;
}

function parseYarn(text: string): Resolved[] {
  return /^__metadata:/m.test(text) ? parseYarnBerry(text) : parseYarnClassic(text);
}

/**
 * A quoted string (JSON's escapes) or a bare word (no quote, comma, colon or space), as yarn
 * classic writes keys and values.
 */
const YARN_WORD = /"(?:[^"\\]|\\.)*"|[^\s",:]+/y;
/** Between the specs of a block's header. */
const YARN_SPEC_SEP = /, */y;

function yarnWord(line: string, at: number): { word: string; end: number } | undefined {
  YARN_WORD.lastIndex = at;
  const m = YARN_WORD.exec(line);
  if (m === null) return undefined;
  const raw = m[0];
  return {
    word: raw.startsWith('"') ? (JSON.parse(raw) as string) : raw,
    end: YARN_WORD.lastIndex,
  };
}

/**
 * yarn classic's lockfile (v1): blocks headed by an unindented `spec, "spec":` line, each with
 * indented `field value` lines (version, resolved, integrity) and deeper blocks (dependencies)
 * that the resolved set does not need. Anything else, a merge conflict's markers included, is
 * not understood.
 */
function parseYarnClassic(text: string): Resolved[] {
  const out: Resolved[] = [];
  let specs: string[] = [];
  let fields = new Map<string, string>();
  const flush = (): void => {
    for (const spec of specs) {
      out.push(entry(nameOfSpec(spec), need(fields.get('version'), spec), fields.get('integrity')));
    }
    specs = [];
    fields = new Map();
  };
  for (const [n, raw] of text.split('\n').entries()) {
    const line = raw.trimEnd();
    const body = line.trimStart();
    if (body === '' || body.startsWith('#')) continue;
    const bad = (): never => {
      throw new Error(`yarn.lock line ${n + 1} is not understood: ${JSON.stringify(line)}`);
    };
    const indent = line.length - body.length;
    if (indent === 0) {
      // `a@^1, "b@^2":`
      if (!line.endsWith(':')) bad();
      flush();
      const header = line.slice(0, -1);
      for (let at = 0; ;) {
        const w = yarnWord(header, at) ?? bad();
        specs.push(w.word);
        if (w.end === header.length) break;
        YARN_SPEC_SEP.lastIndex = w.end;
        if (!YARN_SPEC_SEP.test(header)) bad();
        at = YARN_SPEC_SEP.lastIndex;
      }
    } else if (indent === 2) {
      if (specs.length === 0) bad();
      const key = yarnWord(body, 0) ?? bad();
      const rest = body.slice(key.end);
      if (rest === ':') continue; // a block (dependencies), read no further
      const value = yarnWord(rest.trimStart(), 0) ?? bad();
      if (!/^ +/.test(rest) || value.end !== rest.trimStart().length) bad();
      fields.set(key.word, value.word);
    } else if (specs.length === 0) bad();
  }
  flush();
  return out;
}

function parseYarnBerry(text: string): Resolved[] {
  const doc = obj(parseYaml(text), 'yarn.lock');
  const out: Resolved[] = [];
  for (const [spec, raw] of Object.entries(doc)) {
    if (spec === '__metadata') continue;
    const e = obj(raw, spec);
    const resolution = str(e['resolution']);
    const name = nameOfSpec(resolution || spec.split(',')[0]?.trim() || spec);
    out.push(entry(name, need(e['version'], spec), str(e['checksum'])));
  }
  return out;
}

function parsePnpm(text: string): Resolved[] {
  const doc = obj(parseYaml(text), 'pnpm-lock.yaml');
  const packages = doc['packages'] === undefined ? {} : obj(doc['packages'], 'packages');
  const out: Resolved[] = [];
  for (const [rawKey, raw] of Object.entries(packages)) {
    const e = isObj(raw) ? raw : {};
    // v5 "/@s/a/1.0.0_peer", v6 "/@s/a@1.0.0(peer)", v9 "@s/a@1.0.0"
    let key = rawKey.replace(/^\//, '').replace(/\(.*$/, '');
    let name: string;
    let version: string;
    const at = key.indexOf('@', 1);
    if (at > 0) {
      name = key.slice(0, at);
      version = key.slice(at + 1);
    } else {
      key = key.replace(/_.*$/, '');
      const slash = key.lastIndexOf('/');
      if (slash <= 0) throw new Error(`unrecognised package key ${rawKey}`);
      name = key.slice(0, slash);
      version = key.slice(slash + 1);
    }
    const resolution = isObj(e['resolution']) ? e['resolution'] : {};
    out.push(
      entry(
        str(e['name']) || name,
        str(e['version']) || version,
        str(resolution['integrity']) || str(resolution['tarball']),
      ),
    );
  }
  return out;
}

// ---- TOML: Cargo, Poetry, PDM, uv ------------------------------------------------------------

function tomlPackages(text: string, integrity: (e: Obj) => string): Resolved[] {
  const doc = parseToml(text) as Obj;
  const packages = doc['package'] ?? [];
  if (!Array.isArray(packages)) throw new Error('package is not an array of tables');
  return packages.map((raw: unknown) => {
    const e = obj(raw, 'package');
    const name = need(e['name'], 'package name');
    return entry(name, need(e['version'], `version of ${name}`), integrity(e));
  });
}

function cargoIntegrity(e: Obj): string {
  return [str(e['checksum']), str(e['source'])].filter((s) => s !== '').join(' ');
}

function filesIntegrity(e: Obj): string {
  const files = Array.isArray(e['files']) ? e['files'] : [];
  return files
    .map((f: unknown) => (isObj(f) ? str(f['hash']) : ''))
    .filter((h) => h !== '')
    .sort()
    .join(' ');
}

function uvIntegrity(e: Obj): string {
  const hashes: string[] = [];
  if (isObj(e['sdist'])) hashes.push(str(e['sdist']['hash']));
  if (Array.isArray(e['wheels'])) {
    for (const w of e['wheels'] as unknown[]) if (isObj(w)) hashes.push(str(w['hash']));
  }
  return hashes
    .filter((h) => h !== '')
    .sort()
    .join(' ');
}

// ---- JSON: Composer, Pipenv, NuGet -----------------------------------------------------------

function parseComposer(text: string): Resolved[] {
  const doc = obj(JSON.parse(text), 'composer.lock');
  const out: Resolved[] = [];
  for (const section of ['packages', 'packages-dev']) {
    const list = doc[section] ?? [];
    if (!Array.isArray(list)) throw new Error(`${section} is not a list`);
    for (const raw of list as unknown[]) {
      const e = obj(raw, section);
      const dist = isObj(e['dist']) ? e['dist'] : {};
      const name = need(e['name'], 'package name');
      out.push(
        entry(
          name,
          need(e['version'], `version of ${name}`),
          str(dist['shasum']) || str(dist['reference']),
        ),
      );
    }
  }
  return out;
}

function parsePipfile(text: string): Resolved[] {
  const doc = obj(JSON.parse(text), 'Pipfile.lock');
  const out: Resolved[] = [];
  for (const section of ['default', 'develop']) {
    if (doc[section] === undefined) continue;
    for (const [name, raw] of Object.entries(obj(doc[section], section))) {
      const e = obj(raw, name);
      const hashes = Array.isArray(e['hashes']) ? (e['hashes'] as unknown[]).map(str).sort() : [];
      const version = str(e['version']) || str(e['ref']) || str(e['path']) || str(e['file']);
      out.push(entry(name, version.replace(/^==/, ''), hashes.join(' ')));
    }
  }
  return out;
}

function parseNuget(text: string): Resolved[] {
  const doc = obj(JSON.parse(text), 'packages.lock.json');
  const out: Resolved[] = [];
  for (const [framework, deps] of Object.entries(obj(doc['dependencies'], 'dependencies'))) {
    for (const [name, raw] of Object.entries(obj(deps, framework))) {
      const e = obj(raw, name);
      const version = str(e['resolved']) || `${str(e['type'])}:${str(e['requested'])}`;
      out.push(entry(name, version, str(e['contentHash'])));
    }
  }
  return out;
}

// ---- line formats: go.sum, Gradle ------------------------------------------------------------

/** `module version[/go.mod] h1:hash`, one per line; whitespace is not significant. */
function parseGoSum(text: string): Resolved[] {
  const out: Resolved[] = [];
  for (const line of text.split(/\r?\n/)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length === 1 && fields[0] === '') continue;
    if (fields.length !== 3) throw new Error(`unrecognised go.sum line: ${line}`);
    const [module, version, hash] = fields as [string, string, string];
    out.push(entry(module, version, hash));
  }
  return out;
}

/** `group:artifact:version=configurations`, `#` comments, `empty=...`. */
function parseGradle(text: string): Resolved[] {
  const out: Resolved[] = [];
  for (const line of text.split(/\r?\n/)) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const eq = t.indexOf('=');
    const coords = (eq < 0 ? t : t.slice(0, eq)).trim();
    const configs = eq < 0 ? '' : t.slice(eq + 1).replace(/\s+/g, '');
    if (coords === 'empty') {
      out.push(entry('(empty)', configs));
      continue;
    }
    const parts = coords.split(':');
    if (parts.length < 3) throw new Error(`unrecognised gradle.lockfile line: ${line}`);
    const version = parts.pop() as string;
    out.push(entry(parts.join(':'), version, configs));
  }
  return out;
}
