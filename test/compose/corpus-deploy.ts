import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isDroverError } from '#common/errors.ts';
import type { Application, Node } from '#common/model.ts';
import { projectNameOf } from '#common/project-name.ts';
import { prepareCompose } from '../../cli/compose-env.ts';
import { readProjectPath } from '../../cli/project-path.ts';
import { secretIdOf, sealingKey } from '../../control-service/files/sealing.ts';
import { parseDeployment } from '../../control-service/deploy/index.ts';

/** The corpus: real-world-shaped Compose files, each with a comment naming what it is modelled on. */
export const CORPUS = join(import.meta.dirname, '..', 'fixtures', 'compose', 'corpus');

export const NODES: Node[] = [{ uuid: '11111111-1111-4111-8111-111111111111', host: '127.0.0.11', labels: {}, transfer: {} }];

/** A fixed secrets key, so the corpus's secret ids are the same on every run. */
export const CORPUS_KEY = sealingKey(Buffer.alloc(32, 7));

export type Outcome =
  | { accepted: Application[]; warnings: string[] }
  | { refused: string[]; warnings: string[] };

/**
 * What `drover deploy --dry-run` does with a corpus file, without the HTTP in between: the
 * CLI's preparation (interpolation with the corpus's `.env`, env_file contents, profiles),
 * then the control service's parse. A refusal is its list of problem lines.
 */
export async function dryRun(file: string, options: { env?: Record<string, string>; profiles?: string[]; dir?: string; topology?: string } = {}): Promise<Outcome> {
  const dir = options.dir ?? CORPUS;
  const text = await readFile(join(dir, file), 'utf8');
  const prepared = await prepareCompose({
    text,
    file,
    env: options.env ?? {},
    profiles: options.profiles ?? [],
    readText: (path) => readFile(join(dir, path), 'utf8').catch(() => null),
    readPath: (path) => readProjectPath(join(dir, path)),
  });
  if (prepared.errors.length > 0) return { refused: prepared.errors, warnings: prepared.warnings };
  const topology = options.topology === undefined ? 'version: 1\nnodes: {}\n' : await readFile(join(dir, options.topology), 'utf8');
  try {
    const parsed = parseDeployment({
      project: projectNameOf(prepared.text) ?? 'corpus',
      compose: { file, text: prepared.text },
      topology: { file: options.topology ?? 'topology.yml', text: topology },
      nodes: NODES,
      files: { uploads: prepared.uploads, secretIdOf: (bytes) => secretIdOf(CORPUS_KEY, bytes) },
    });
    return { accepted: parsed.applications, warnings: prepared.warnings };
  } catch (err) {
    if (!isDroverError(err, 'DROVER_BAD_CONFIG')) throw err;
    const problems = err.detail.problems as { message: string }[] | undefined;
    return { refused: problems ? problems.map((p) => p.message) : [err.message], warnings: prepared.warnings };
  }
}
