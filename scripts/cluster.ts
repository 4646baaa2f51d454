// `drover cluster …` without the CLI: the scripts use it to build images and to bring the
// demo cluster up, so they work before and apart from the rest of the CLI.
import { runClusterCommand } from '../cli/local-cluster/command.ts';

process.exitCode = await runClusterCommand(process.argv.slice(2));
