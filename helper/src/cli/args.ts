/**
 * The helper's command line (pinned by docs/protocol.md, "Command line"): serve the systemd socket, `--socket PATH`,
 * or `--stdio`; `install [--group NAME]`; `uninstall`; `policy check|show`; `status`; `audit`. Parsed strictly:
 * an unknown option or a stray argument is an error, never ignored.
 */
import yargs from 'yargs';
import { parseDuration } from '../audit/query.js';
import { CodedError } from '../../../shared/src/errors/coded-error.js';
import {
  DEFAULT_CONNECTION_IDLE_SECONDS, DEFAULT_IDLE_SECONDS, DEFAULT_MAX_REFUSALS, DEFAULT_POLICY_FILE, DEFAULT_STATE_DIR,
} from '../defaults.js';

export type Command =
  | { kind: 'help' }
  | {
    kind: 'serve'; config: string; socket: string | undefined; stdio: boolean; stateDir: string; idleSeconds: number;
    idleConnectionSeconds: number; maxRefusals: number;
  }
  | { kind: 'install'; group: string | undefined }
  | { kind: 'uninstall' }
  | { kind: 'policy-check'; config: string; user: string; bridge: string; stateDir: string; json: boolean }
  | { kind: 'policy-show'; config: string }
  | { kind: 'status'; stateDir: string; user: string | undefined; json: boolean }
  | {
    kind: 'audit'; config: string; file: string | undefined; user: string | undefined; bridge: string | undefined;
    sinceMs: number | undefined; json: boolean;
  };

/** The command line is wrong: the message says what, for a person. */
export class UsageError extends CodedError<'USAGE'> {
  override readonly name = 'UsageError';

  constructor(message: string, options: { cause?: unknown } = {}) {
    super('USAGE', message, options);
  }
}

/** The parsed command; `help` when --help was asked for (yargs has printed it). */
export function parseArgs(argv: readonly string[]): Command {
  let command: Command | undefined;
  const config = { type: 'string', default: DEFAULT_POLICY_FILE, describe: 'policy file', requiresArg: true } as const;
  const parsed = yargs([...argv])
    .scriptName('xkvm-helper')
    .usage('$0 [--config FILE] [--socket PATH | --stdio]\n\nServes make-nics and ovs-cleanup for xkvm within the policy in FILE.')
    .command('$0', 'serve: the systemd socket (fd 3), --socket PATH, or --stdio', (y) => y
      .option('config', config)
      .option('socket', { type: 'string', describe: 'bind and serve this Unix socket', requiresArg: true })
      .option('stdio', { type: 'boolean', default: false, describe: 'serve one session on stdin/stdout (pkexec)' })
      .option('state-dir', { type: 'string', default: DEFAULT_STATE_DIR, describe: 'session records', requiresArg: true })
      .option('idle-timeout', { type: 'number', default: DEFAULT_IDLE_SECONDS, describe: 'seconds idle before a socket-activated helper exits', requiresArg: true })
      .option('idle-connection-seconds', {
        type: 'number', default: DEFAULT_CONNECTION_IDLE_SECONDS, requiresArg: true,
        describe: 'close a socket connection that holds no session taps after this many seconds without a request',
      })
      .option('max-refusals', {
        type: 'number', default: DEFAULT_MAX_REFUSALS, requiresArg: true,
        describe: 'close a connection after this many refused requests in a row (0: never)',
      }),
    (a) => {
      if (a.stdio && a.socket !== undefined) throw new UsageError('--socket and --stdio cannot be used together');
      if (!Number.isFinite(a['idle-timeout']) || a['idle-timeout'] < 1) throw new UsageError('--idle-timeout must be a number of seconds ≥ 1');
      const idleConnection = a['idle-connection-seconds'];
      if (!Number.isFinite(idleConnection) || idleConnection < 0.1 || idleConnection > 3600) {
        throw new UsageError('--idle-connection-seconds must be a number of seconds from 0.1 to 3600');
      }
      const maxRefusals = a['max-refusals'];
      if (!Number.isInteger(maxRefusals) || maxRefusals < 0) throw new UsageError('--max-refusals must be a whole number ≥ 0');
      command = {
        kind: 'serve', config: a.config, socket: a.socket, stdio: a.stdio, stateDir: a['state-dir'], idleSeconds: a['idle-timeout'],
        idleConnectionSeconds: idleConnection, maxRefusals,
      };
    })
    .command('install', 'set this host up: systemd units, polkit action (and rule with --group), default-deny policy', (y) => y
      .option('group', { type: 'string', describe: 'members of this group may use the helper through pkexec', requiresArg: true }),
    (a) => {
      command = { kind: 'install', group: a.group };
    })
    .command('uninstall', 'remove what install wrote (an edited helper.conf is kept)', (y) => y, () => {
      command = { kind: 'uninstall' };
    })
    .command('policy <action>', 'audit the policy: check --user U --bridge B, or show', (y) => y
      .positional('action', { choices: ['check', 'show'] as const, demandOption: true })
      .option('config', config)
      .option('user', { type: 'string', describe: 'user name or uid (check)', requiresArg: true })
      .option('bridge', { type: 'string', describe: 'bridge name (check)', requiresArg: true })
      .option('state-dir', { type: 'string', default: DEFAULT_STATE_DIR, describe: 'where the ledger of taps made is (check: taps in use)', requiresArg: true })
      .option('json', { type: 'boolean', default: false, describe: 'check: one JSON object (for programs)' }),
    (a) => {
      if (a.action === 'show') {
        command = { kind: 'policy-show', config: a.config };
        return;
      }
      if (a.user === undefined || a.bridge === undefined) throw new UsageError('policy check needs --user USER and --bridge BRIDGE');
      command = { kind: 'policy-check', config: a.config, user: a.user, bridge: a.bridge, stateDir: a['state-dir'], json: a.json };
    })
    .command('status', 'every tap the helpers made that still exists (root)', (y) => y
      .option('state-dir', { type: 'string', default: DEFAULT_STATE_DIR, describe: 'the ledger and session records', requiresArg: true })
      .option('user', { type: 'string', describe: 'only the taps this user\'s requests made (name or uid)', requiresArg: true })
      .option('json', { type: 'boolean', default: false, describe: '{"taps": [...]} on one line' }),
    (a) => {
      command = { kind: 'status', stateDir: a['state-dir'], user: a.user, json: a.json };
    })
    .command('audit', 'the audit-log records that match, oldest first', (y) => y
      .option('config', config)
      .option('file', { type: 'string', describe: 'read this file instead of the policy\'s audit-log', requiresArg: true })
      .option('user', { type: 'string', describe: 'records of this user (name or uid)', requiresArg: true })
      .option('bridge', { type: 'string', describe: 'records naming this bridge', requiresArg: true })
      .option('since', { type: 'string', describe: 'records of the last DURATION (90s, 15m, 2h, 1d, 1h30m)', requiresArg: true })
      .option('json', { type: 'boolean', default: false, describe: 'one JSON record a line' }),
    (a) => {
      let sinceMs: number | undefined;
      if (a.since !== undefined) {
        try {
          sinceMs = parseDuration(a.since);
        } catch (error) {
          throw new UsageError((error as Error).message, { cause: error });
        }
      }
      command = { kind: 'audit', config: a.config, file: a.file, user: a.user, bridge: a.bridge, sinceMs, json: a.json };
    })
    .strict()
    .help()
    .version(false)
    .exitProcess(false)
    .fail((message, error) => {
      throw error instanceof UsageError ? error : new UsageError(message || error?.message || 'bad arguments', { cause: error });
    })
    .parseSync();
  if (command !== undefined) return command;
  // yargs runs no command handler when it shows the help instead.
  if (Reflect.get(parsed, 'help') === true) return { kind: 'help' };
  throw new UsageError('no command given');
}
