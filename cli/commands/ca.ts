import { caPaths, initCa, issue, listIssued, revoke, type IssuedEntry } from '#common/cluster-ca.ts';
import { defaultCaDir } from '#common/client-config.ts';
import type { Role } from '#common/identity.ts';
import { usageError } from '../cli-error.ts';
import type { Command, Values } from '../command.ts';
import { print, printJson, type CliContext } from '../context.ts';
import { table } from '../format.ts';

const USAGE = [
  'drover ca init [--dir DIR]',
  '       drover ca control <address|name>... [--dir DIR] [--days N]',
  '       drover ca node <name> [<address>...] [--dir DIR] [--days N]',
  '       drover ca metrics <name> [--dir DIR] [--days N]',
  '       drover ca user <name> [--dir DIR] [--days N]',
  '       drover ca list [--dir DIR] [--json]',
  '       drover ca revoke <serial|role/name> [--dir DIR]',
].join('\n');

const DIR_HELP = 'the CA directory (default: ~/.config/drover/ca, beside the config file)';

function dirOf(ctx: CliContext, values: Values): string {
  return (values.dir as string | undefined) ?? defaultCaDir(ctx.env);
}

function daysOf(values: Values): number | undefined {
  if (values.days === undefined) return undefined;
  const days = Number(values.days);
  if (!Number.isInteger(days) || days < 1 || days > 3650) throw usageError(`--days must be a whole number of days from 1 to 3650, not "${String(values.days)}"`, USAGE);
  return days;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Control-service names: IPv4 addresses go in as IP SANs, the rest as DNS names. Every bad one is named. */
function sansOf(words: string[]): { ipAddresses: string[]; dnsNames: string[] } {
  const ipAddresses: string[] = [];
  const dnsNames: string[] = [];
  const bad: string[] = [];
  for (const word of words) {
    const ip = IPV4.exec(word);
    if (ip) {
      if (ip.slice(1).every((part) => Number(part) <= 255)) ipAddresses.push(word);
      else bad.push(word);
    } else if (/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/.test(word) && word.length <= 253) dnsNames.push(word);
    else bad.push(word);
  }
  if (bad.length > 0) throw usageError(`not an IPv4 address or DNS name: ${bad.map((b) => `"${b}"`).join(', ')}`, USAGE);
  return { ipAddresses, dnsNames };
}

async function issueAndSay(ctx: CliContext, values: Values, role: Role, name: string, extra: { ipAddresses?: string[]; dnsNames?: string[] } = {}): Promise<number> {
  const dir = dirOf(ctx, values);
  const days = daysOf(values);
  const { paths, entry } = await issue(dir, { role, name, ...extra, ...(days ? { days } : {}) });
  if (ctx.json) printJson(ctx.stdout, entry);
  else {
    print(ctx.stdout, `${role} certificate '${name}' (serial ${entry.serial}, until ${entry.not_after.slice(0, 10)})`);
    print(ctx.stdout, `  certificate ${paths.certPath}`);
    print(ctx.stdout, `  key         ${paths.keyPath} (0600: copy it only to where it is used)`);
    print(ctx.stdout, `  CA          ${caPaths(dir).cert}`);
  }
  return 0;
}

const withDir = (extra?: (c: import('commander').Command) => void) => (command: import('commander').Command) => {
  command.option('--dir <dir>', DIR_HELP);
  extra?.(command);
};
const withDays = (command: import('commander').Command) => command.option('--days <n>', 'validity in days (default 825)');

/**
 * `drover ca` (docs/DESIGN.md §23): the cluster CA, kept by the operator in a directory
 * (common/cluster-ca.ts), and the certificates it issues: the control service's, one per
 * node (O=drover-node, CN=<name>), one per API user (O=drover-user). Keys are written 0600
 * and never printed.
 */
export const caCommand: Command = {
  name: 'ca',
  summary: 'the cluster CA: init, control, node, user, list, revoke',
  usage: USAGE,
  subcommands: [
    {
      name: 'init',
      summary: 'make the cluster CA (its key stays in the directory, with you)',
      usage: 'drover ca init [--dir DIR]',
      configure: withDir(),
      async run(ctx, values) {
        const dir = dirOf(ctx, values);
        const paths = await initCa(dir);
        print(ctx.stdout, `cluster CA made in ${dir}`);
        print(ctx.stdout, `  certificate ${paths.cert} (give it to the control service, every node and every user)`);
        print(ctx.stdout, `  key         ${paths.key} (0600: it stays here)`);
        print(ctx.stdout, 'next: drover ca control <address>…, drover ca node <name> per node, drover ca user <name>');
        return 0;
      },
    },
    {
      name: 'control',
      summary: "the control service's certificate, for the addresses and names clients reach it by",
      usage: 'drover ca control <address|name>... [--dir DIR] [--days N]',
      needs: 'the addresses or names clients reach the control service by',
      configure: withDir((c) => withDays(c.argument('<names...>', 'IPv4 addresses and DNS names'))),
      async run(ctx, values, args) {
        if (args.length === 0) throw usageError('ca control needs the addresses or names clients reach the control service by', USAGE);
        return issueAndSay(ctx, values, 'control', 'control', sansOf(args));
      },
    },
    {
      name: 'node',
      summary: "a node's certificate (its agent, proxy and volume plugin; its transfer identity)",
      usage: 'drover ca node <name> [<address>...] [--dir DIR] [--days N]',
      needs: 'a node name',
      configure: withDir((c) =>
        withDays(c.argument('<name>', 'the node name (the certificate CN)').argument('[addresses...]', "the node's addresses and names, where its processes serve /metrics over TLS (subject alternative names)")),
      ),
      async run(ctx, values, args) {
        if (args.length < 1) throw usageError('ca node needs one node name', USAGE);
        return issueAndSay(ctx, values, 'node', args[0]!, args.length > 1 ? sansOf(args.slice(1)) : {});
      },
    },
    {
      name: 'metrics',
      summary: "a scraper's certificate (Prometheus): /metrics of every drover process, no API route",
      usage: 'drover ca metrics <name> [--dir DIR] [--days N]',
      needs: 'a scraper name',
      configure: withDir((c) => withDays(c.argument('<name>', 'the scraper name (the certificate CN)'))),
      async run(ctx, values, args) {
        if (args.length !== 1) throw usageError('ca metrics needs one name', USAGE);
        return issueAndSay(ctx, values, 'metrics', args[0]!);
      },
    },
    {
      name: 'user',
      summary: "an API user's certificate (the whole API)",
      usage: 'drover ca user <name> [--dir DIR] [--days N]',
      needs: 'a user name',
      configure: withDir((c) => withDays(c.argument('<name>', 'the user name (the certificate CN)'))),
      async run(ctx, values, args) {
        if (args.length !== 1) throw usageError('ca user needs one user name', USAGE);
        return issueAndSay(ctx, values, 'user', args[0]!);
      },
    },
    {
      name: 'list',
      summary: 'every certificate the CA issued, with serial, expiry and whether it is revoked',
      usage: 'drover ca list [--dir DIR] [--json]',
      configure: withDir(),
      async run(ctx, values) {
        const issued = await listIssued(dirOf(ctx, values));
        if (ctx.json) printJson(ctx.stdout, issued);
        else print(ctx.stdout, table(['ROLE', 'NAME', 'SERIAL', 'EXPIRES', 'REVOKED'], issued.map(row)));
        return 0;
      },
    },
    {
      name: 'revoke',
      summary: 'revoke certificates by serial or role/name; the control service reloads revoked.txt',
      usage: 'drover ca revoke <serial|role/name> [--dir DIR]',
      needs: 'a serial or role/name',
      configure: withDir((c) => c.argument('<which>', 'a serial (drover ca list), or role/name such as node/n3')),
      async run(ctx, values, args) {
        if (args.length !== 1) throw usageError('ca revoke needs one serial or role/name', USAGE);
        const dir = dirOf(ctx, values);
        const revoked = await revoke(dir, args[0]!);
        for (const e of revoked) print(ctx.stdout, `revoked ${e.role} '${e.name}' (serial ${e.serial})`);
        print(ctx.stdout, `the revoked list is ${caPaths(dir).revoked}: the control service reads it with --revoked (copy it there if it runs elsewhere)`);
        return 0;
      },
    },
  ],
};

function row(e: IssuedEntry): string[] {
  return [e.role, e.name, e.serial, e.not_after.slice(0, 10), e.revoked_at?.slice(0, 19).replace('T', ' ') ?? '-'];
}
