import { usageError } from '../cli-error.ts';
import type { Command } from '../command.ts';
import { SHELLS, completionScript, type Shell } from '../completion.ts';

const USAGE = 'drover completion bash|zsh';

/** `drover completion bash|zsh`: prints the shell's completion script (`source <(drover completion bash)`). */
export const completionCommand: Command = {
  name: 'completion',
  summary: 'print a shell completion script: source <(drover completion bash)',
  usage: USAGE,
  needs: 'a shell (bash or zsh)',
  configure: (command) => command.argument('<shell>', 'bash or zsh'),
  async run(ctx, _values, positionals) {
    const [shell, ...extra] = positionals;
    if (shell === undefined) throw usageError('completion needs a shell (bash or zsh)', USAGE);
    if (!(SHELLS as readonly string[]).includes(shell)) throw usageError(`completion: no completion for shell "${shell}"; give bash or zsh`, USAGE);
    if (extra.length > 0) throw usageError(`completion takes one shell, got also "${extra[0]}"`, USAGE);
    if (ctx.tree === undefined) throw new Error('the command table was not given to completion');
    ctx.stdout.write(completionScript(shell as Shell, ctx.tree));
    return 0;
  },
};
