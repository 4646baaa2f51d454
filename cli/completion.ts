/**
 * Shell completion scripts for `drover completion bash|zsh` (docs/DESIGN.md §27), generated
 * from the command table as commander holds it: command and subcommand names, each one's
 * flags and the global ones, and the values of a flag that takes one of a few (`-o`). Pure.
 * zsh runs the bash function through its bashcompinit.
 */
import type { CommandTree } from './context.ts';

export const SHELLS = ['bash', 'zsh'] as const;
export type Shell = (typeof SHELLS)[number];

interface Level {
  path: string;
  words: string[];
}

function levels(tree: CommandTree, globals: string[], path = tree.name): Level[] {
  const own = tree.subcommands.filter((c) => c.name !== 'help').map((c) => c.name);
  const flags = [...new Set([...tree.flags, ...globals, '--help'])];
  return [{ path, words: [...own, ...flags] }, ...tree.subcommands.flatMap((c) => levels(c, globals, `${path} ${c.name}`))];
}

function valued(tree: CommandTree): Record<string, string[]> {
  const out: Record<string, string[]> = { ...tree.values };
  for (const c of tree.subcommands) Object.assign(out, valued(c));
  return out;
}

export function completionScript(shell: Shell, tree: CommandTree): string {
  const all = levels(tree, tree.flags);
  const values = valued(tree);
  const withValue = Object.keys(values).sort();
  const fn = `_${tree.name.replace(/[^A-Za-z0-9_]/g, '_')}`;
  const bash = [
    `# ${tree.name} completion for bash: source <(${tree.name} completion bash)`,
    `${fn}() {`,
    '  local cur prev path w i',
    '  cur="${COMP_WORDS[COMP_CWORD]}"',
    '  prev="${COMP_WORDS[COMP_CWORD-1]}"',
    `  path=${tree.name}`,
    '  for ((i = 1; i < COMP_CWORD; i++)); do',
    '    w="${COMP_WORDS[i]}"',
    '    case "$w" in',
    ...(withValue.length > 0 ? [`      ${withValue.join('|')}) i=$((i + 1)); continue ;;`] : []),
    '      -*) continue ;;',
    '    esac',
    '    case "$path $w" in',
    `      ${all.slice(1).map((l) => `"${l.path}"`).join('|')}) path="$path $w" ;;`,
    '    esac',
    '  done',
    '  case "$prev" in',
    ...withValue.map((flag) => `    ${flag}) COMPREPLY=(${values[flag]!.length > 0 ? `$(compgen -W "${values[flag]!.join(' ')}" -- "$cur")` : `$(compgen -f -- "$cur")`}); return ;;`),
    '  esac',
    '  local words=""',
    '  case "$path" in',
    ...all.map((l) => `    "${l.path}") words="${l.words.join(' ')}" ;;`),
    '  esac',
    '  COMPREPLY=($(compgen -W "$words" -- "$cur"))',
    '}',
    `complete -F ${fn} ${tree.name}`,
    '',
  ].join('\n');
  if (shell === 'bash') return bash;
  return [`#compdef ${tree.name}`, `# ${tree.name} completion for zsh: source <(${tree.name} completion zsh)`, 'autoload -U +X bashcompinit && bashcompinit', bash].join('\n');
}
