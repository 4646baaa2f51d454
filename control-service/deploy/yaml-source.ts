import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { badConfig, ConfigAbort, keyPath, type ConfigPlace, type ConfigProblem } from './config-error.ts';
import type { DeployFile } from './index.ts';

/** Files above this size are refused before parsing: a deploy file is hand-written. */
const MAX_FILE_BYTES = 1024 * 1024;

/**
 * One parsed YAML file that can say where a key sits (line and column), so every error can
 * point at it. YAML 1.2 core schema, so `"8080:80"` and `8080:80` are both strings (no
 * YAML 1.1 base-60 surprise); merge keys (`<<: *defaults`) are honoured, as Compose does.
 */
export class YamlSource {
  readonly file: string;
  readonly value: unknown;
  private readonly doc: Document.Parsed;
  private readonly lines: LineCounter;

  /**
   * @param problems where `report` and `fail` record problems; the files of one deploy share
   *   one list, so that a refusal names the problems of both.
   * @throws ConfigAbort when the file is too large or not YAML (the problem is recorded).
   */
  constructor(
    input: DeployFile,
    readonly problems: ConfigProblem[] = [],
  ) {
    this.file = input.file;
    if (Buffer.byteLength(input.text) > MAX_FILE_BYTES) {
      problems.push({ place: { file: input.file }, what: `file is larger than ${MAX_FILE_BYTES} bytes` });
      throw new ConfigAbort();
    }
    this.lines = new LineCounter();
    this.doc = parseDocument(input.text, { lineCounter: this.lines, merge: true, uniqueKeys: true, prettyErrors: true });
    const first = this.doc.errors[0];
    if (first !== undefined) {
      const pos = first.linePos?.[0];
      const place: ConfigPlace = { file: input.file };
      if (pos !== undefined) Object.assign(place, { line: pos.line, column: pos.col });
      problems.push({ place, what: `not valid YAML: ${first.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}` });
      throw new ConfigAbort();
    }
    this.value = this.doc.toJS({ maxAliasCount: 1000 });
  }

  /**
   * The place of the key at `path` (a path of map keys and list indexes from the top). Falls
   * back to the nearest enclosing node when the exact key is not in the text (a merged key).
   */
  placeOf(path: readonly PropertyKey[], service?: string, key?: readonly PropertyKey[]): ConfigPlace {
    const place: ConfigPlace = { file: this.file };
    if (service !== undefined) place.service = service;
    if (key !== undefined && key.length > 0) place.key = keyPath(key);
    for (let n = path.length; n >= 0; n--) {
      const offset = this.offsetOf(path.slice(0, n));
      if (offset !== undefined) {
        const { line, col } = this.lines.linePos(offset);
        return { ...place, line, column: col };
      }
    }
    return place;
  }

  /** Records a problem at `path` and goes on reading. */
  report(path: readonly PropertyKey[], what: string, service?: string, key?: readonly PropertyKey[], issues?: unknown[]): void {
    const place = this.placeOf(path, service, key);
    const problem: ConfigProblem = issues === undefined ? { place, what } : { place, what, issues };
    const line = badConfig(place, what).message;
    if (!this.problems.some((p) => badConfig(p.place, p.what).message === line)) this.problems.push(problem);
  }

  /**
   * Records a problem at `path` and abandons the value being read (`ConfigAbort`, caught by
   * the nearest `Scope.attempt`); parseDeployment raises `DROVER_BAD_CONFIG` with all of them.
   */
  fail(path: readonly PropertyKey[], what: string, service?: string, key?: readonly PropertyKey[], issues?: unknown[]): never {
    this.report(path, what, service, key, issues);
    throw new ConfigAbort();
  }

  private offsetOf(path: readonly PropertyKey[]): number | undefined {
    if (path.length === 0) return this.doc.contents?.range?.[0];
    const parent = path.length === 1 ? this.doc.contents : this.doc.getIn(path.slice(0, -1) as unknown[], true);
    const last = path[path.length - 1];
    if (isMap(parent)) {
      const pair = parent.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === last);
      if (pair && isScalar(pair.key)) return pair.key.range?.[0];
      return undefined;
    }
    const node = this.doc.getIn(path as unknown[], true);
    if (node && typeof node === 'object' && 'range' in node) {
      const range = (node as { range?: [number, number, number] }).range;
      return range?.[0];
    }
    return undefined;
  }
}
