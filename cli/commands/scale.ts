import { usageError } from '../cli-error.ts';
import type { Command } from '../command.ts';
import { print, printJson } from '../context.ts';

const USAGE = 'drover scale <application> <instances> [--json]';

/**
 * `drover scale web 5` (docs/DESIGN.md §30): how many instances an application without a
 * dataset runs from now on — more are placed at once, the newest go first after draining.
 * A single application becomes one with instances. The number is checked here (a whole
 * number, 0 to 256) and again by the control service, which refuses an application with a
 * dataset or a global one naming `instances`; nothing changes then. A later `drover deploy`
 * sets the number its file gives, as `docker compose up` after `docker service scale` does.
 */
export const scaleCommand = {
  name: 'scale',
  summary: 'set how many instances an application runs',
  usage: USAGE,
  needs: 'an application and a number of instances',
  configure: (command) => command.argument('<application>', 'the application').argument('<instances>', 'how many instances (0 to 256)'),
  async run(ctx, _values, positionals) {
    if (positionals.length !== 2) throw usageError('scale needs an application and a number of instances', USAGE);
    const [app, text] = positionals as [string, string];
    if (!/^\d+$/.test(text) || Number(text) > 256) throw usageError(`instances "${text}" is not a whole number from 0 to 256`, USAGE);
    const before = await ctx.control.application(app);
    const status = await ctx.control.scaleApplication(app, Number(text));
    if (ctx.json) printJson(ctx.stdout, status);
    else print(ctx.stdout, `"${app}": ${before.instances?.filter((i) => !i.draining).length ?? 1} → ${text} instances (drover status shows each as it starts or drains)`);
    return 0;
  },
} satisfies Command;
