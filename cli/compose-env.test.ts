import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { interpolate, interpolateCompose, parseDotEnv, prepareCompose } from './compose-env.ts';

const env: Record<string, string> = { TAG: '7.2', EMPTY: '', USER: 'ada', PORT: '8080' };
const lookup = (name: string) => env[name];

describe('interpolate', () => {
  it('substitutes $VAR and ${VAR}, and reads $$ as a literal dollar', () => {
    expect(interpolate('redis:$TAG ${USER}-x $$HOME cost: 5$', lookup)).toEqual({ value: 'redis:7.2 ada-x $HOME cost: 5$', unset: [], errors: [] });
  });

  it('takes :- defaults when unset or empty, and - defaults only when unset', () => {
    expect(interpolate('${NOPE:-a} ${EMPTY:-b} ${NOPE-c} ${EMPTY-d}', lookup).value).toBe('a b c ');
  });

  it('interpolates nested defaults', () => {
    expect(interpolate('${NOPE:-${USER:-x}-${ALSO_NOPE:-y}}', lookup).value).toBe('ada-y');
  });

  it('reports :? and ? errors with their message, and :+ alternatives', () => {
    expect(interpolate('${NOPE:?set NOPE first}', lookup).errors).toEqual(['required variable NOPE is missing a value: set NOPE first']);
    expect(interpolate('${EMPTY:?}', lookup).errors).toEqual(['required variable EMPTY is missing a value']);
    expect(interpolate('${EMPTY?}', lookup).errors).toEqual([]);
    expect(interpolate('${USER:+yes} ${NOPE:+no}', lookup).value).toBe('yes ');
  });

  it('leaves an unset variable empty and names it, as Compose warns', () => {
    expect(interpolate('a${NOPE}b$NOPE', lookup)).toEqual({ value: 'ab', unset: ['NOPE'], errors: [] });
  });

  it('reports an unclosed brace and an operator it does not know', () => {
    expect(interpolate('${USER', lookup).errors[0]).toMatch(/is not closed/);
    expect(interpolate('${USER/x/y}', lookup).errors[0]).toMatch(/unknown operator/);
  });
});

describe('parseDotEnv', () => {
  it('reads Compose .env syntax: export, comments, quotes, escapes, multi-line and interpolation', () => {
    const text = [
      '# a comment',
      'export A=1',
      'B = two words # trailing comment',
      "C='literal $A \\n'",
      'D="tab\\there ${A}"',
      'E="line one',
      'line two"',
      'F=${A}${NOPE:-x}',
      'G=',
      'USER',
      '',
    ].join('\n');
    expect(parseDotEnv(text, '.env', lookup)).toEqual({
      vars: { A: '1', B: 'two words', C: 'literal $A \\n', D: 'tab\there 1', E: 'line one\nline two', F: '1x', G: '', USER: 'ada' },
      errors: [],
      unset: [],
    });
  });

  it('names the line that is not an assignment', () => {
    expect(parseDotEnv('A=1\n=oops\n', 'prod.env').errors).toEqual(['prod.env:2: "=oops" is not "NAME=value"']);
  });
});

describe('interpolateCompose', () => {
  const file = ['services:', '  redis:', '    image: "redis:${TAG}"', '    command: |', '      redis-server', '      --port $PORT', '    ports: ["${PORT}:6379"]', '    labels: { $USER: x }', 'volumes: {}', ''].join('\n');

  it('rewrites only the values that change, keeping every other line and column where it was', () => {
    const out = interpolateCompose(file, 'compose.yml', lookup);
    expect(out.errors).toEqual([]);
    expect(out.value).toMatchObject({ services: { redis: { image: 'redis:7.2', command: 'redis-server\n--port 8080\n', ports: ['8080:6379'], labels: { $USER: 'x' } } } });
    const lines = out.text.split('\n');
    expect(lines.length).toBe(file.split('\n').length);
    expect(lines[7]).toBe('    labels: { $USER: x }'); // keys are not interpolated
    expect(lines[8]).toBe('volumes: {}');
  });

  it('warns with the place of an unset variable and fails on a required one', () => {
    const out = interpolateCompose('services:\n  a:\n    image: "x:${NOPE}"\n    environment: { P: "${PW:?set a password}" }\n', 'c.yml', lookup);
    expect(out.warnings).toEqual(['c.yml:3:12: variable "NOPE" is not set, using ""']);
    expect(out.errors).toEqual(['c.yml:4:23: required variable PW is missing a value: set a password']);
  });

  it('gives bare environment names their value from the environment, leaving out unset ones with a warning', () => {
    const out = interpolateCompose('services:\n  a:\n    environment: [USER, NOPE, X=1]\n  b:\n    environment:\n      USER:\n      NOPE:\n', 'c.yml', lookup);
    expect(parse(out.text)).toEqual({ services: { a: { environment: ['USER=ada', 'NOPE', 'X=1'] }, b: { environment: { USER: 'ada', NOPE: null } } } });
    expect(out.warnings).toHaveLength(2);
  });
});

describe('prepareCompose', () => {
  const files: Record<string, string> = {
    '.env': 'TAG=7.0\nCOMPOSE_PROFILES=debug\nCOMPOSE_PROJECT_NAME=shop\n',
    'prod.env': 'TAG=8.0\n',
    'db.env': 'POSTGRES_USER=${USER}\nPOSTGRES_DB=shop\n',
  };
  const readText = async (path: string) => files[path.replace(/^.*\//, '')] ?? null;

  it('reads .env (the shell winning), the env_file contents and profiles into the trailer', async () => {
    const text = 'services:\n  db:\n    image: "postgres:${TAG}"\n    env_file: [db.env, { path: missing.env, required: false }]\n';
    const out = await prepareCompose({ text, file: 'compose.yml', env: { USER: 'ada' }, profiles: ['admin'], readText });
    expect(out.errors).toEqual([]);
    expect(out.projectFromEnv).toBe('shop');
    expect(parse(out.text)).toEqual({
      services: { db: { image: 'postgres:7.0', env_file: ['db.env', { path: 'missing.env', required: false }] } },
      'x-drover-cli': { interpolated: true, profiles: ['admin', 'debug'], env_files: { 'db.env': { POSTGRES_USER: 'ada', POSTGRES_DB: 'shop' }, 'missing.env': null } },
    });
    const shellWins = await prepareCompose({ text, file: 'compose.yml', env: { TAG: '6' }, profiles: [], readText });
    expect(parse(shellWins.text).services.db.image).toBe('postgres:6');
  });

  it('reads --env-file instead of .env, and refuses one that is missing', async () => {
    const text = 'services:\n  db:\n    image: "postgres:${TAG}"\n';
    expect(parse((await prepareCompose({ text, file: 'c.yml', env: {}, envFile: 'prod.env', profiles: [], readText })).text).services.db.image).toBe('postgres:8.0');
    expect((await prepareCompose({ text, file: 'c.yml', env: {}, envFile: 'nope.env', profiles: [], readText })).errors).toEqual(['--env-file nope.env: no such file']);
  });

  it('sends Flocker files as they are', async () => {
    const text = 'version: 1\napplications:\n  a: { image: "x:$TAG" }\n';
    expect((await prepareCompose({ text, file: 'f.yml', env: {}, profiles: [], readText })).text).toBe(text);
  });
});
