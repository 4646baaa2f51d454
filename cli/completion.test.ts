import { describe, expect, it } from 'vitest';
import { completionScript } from './completion.ts';
import type { CommandTree } from './context.ts';

const TREE: CommandTree = {
  name: 'drover',
  summary: '',
  flags: ['--json', '-o', '--output'],
  values: { '-o': ['wide', 'json'], '--output': ['wide', 'json'] },
  subcommands: [
    { name: 'logs', summary: '', flags: ['-f', '--follow', '--tail'], values: { '--tail': [] }, subcommands: [] },
    { name: 'datasets', summary: '', flags: [], values: {}, subcommands: [{ name: 'list', summary: '', flags: [], values: {}, subcommands: [] }] },
  ],
};

describe('completionScript', () => {
  it("offers each level's commands and flags, the global ones everywhere, and the values of -o", () => {
    const bash = completionScript('bash', TREE);
    expect(bash).toContain('"drover") words="logs datasets --json -o --output --help" ;;');
    expect(bash).toContain('"drover logs") words="-f --follow --tail --json -o --output --help" ;;');
    expect(bash).toContain('"drover datasets list") words="--json -o --output --help" ;;');
    expect(bash).toContain('-o) COMPREPLY=($(compgen -W "wide json" -- "$cur")); return ;;');
    expect(bash).toContain('"drover logs"|"drover datasets"|"drover datasets list") path="$path $w" ;;');
    expect(bash.trimEnd().split('\n').at(-1)).toBe('complete -F _drover drover');
  });

  it('gives zsh the same function through bashcompinit', () => {
    const zsh = completionScript('zsh', TREE);
    expect(zsh.split('\n').slice(0, 3)).toEqual(['#compdef drover', '# drover completion for zsh: source <(drover completion zsh)', 'autoload -U +X bashcompinit && bashcompinit']);
    expect(zsh).toContain(completionScript('bash', TREE));
  });
});
