import { ACTION_ID } from './action.js';
import { checkedPath } from './checks.js';
import { GENERATED_MARKER } from './marker.js';
import type { InstallPaths } from './paths.js';
import { unitWord } from './unit-quote.js';

/**
 * xkvm-helper.socket. Mode 0666 even with --group: who may do what is the policy's decision
 * (helper.conf, audited), not the file mode's. A 0660 socket with SocketGroup= would be a
 * second, silent gate: `allow br0 alice` would fail for a non-member with a bare "permission
 * denied" that no audit record explains, and the client would not fall back to pkexec. The
 * cost is that every local user reaches the helper's frame reader, which is bounded (64 KiB
 * frames, 5 s per frame) and refuses anything malformed. An admin who wants the gate anyway
 * adds a drop-in (SocketMode=0660, SocketGroup=NAME).
 */
export function renderSocketUnit(paths: InstallPaths): string {
  const socket = unitWord(checkedPath(paths.socket, 'the socket path'), 'path');
  return [
    `# ${GENERATED_MARKER}; removed by \`xkvm-helper uninstall\`. Do not edit: install`,
    '# rewrites it. Change settings with `systemctl edit xkvm-helper.socket` (a drop-in).',
    '#',
    '# SocketMode=0666 on purpose: /etc/xkvm/helper.conf decides who may put taps on which',
    '# bridges, and the helper audits every request. A file mode would be a second gate that',
    '# helper.conf cannot show and the audit log cannot explain. To add it anyway, override',
    '# SocketMode=0660 and SocketGroup=GROUP in a drop-in. (pkexec users need the polkit',
    `# action ${ACTION_ID} instead; the socket is for everyone else.)`,
    '[Unit]',
    'Description=xkvm helper socket (taps on bridges for unprivileged qemu)',
    '',
    '[Socket]',
    `ListenStream=${socket}`,
    'SocketUser=root',
    'SocketGroup=root',
    'SocketMode=0666',
    '# Creates the run directory; the service keeps its session state there.',
    'DirectoryMode=0755',
    '# A stopped socket leaves no file behind, so clients fall back to pkexec.',
    'RemoveOnStop=yes',
    'Accept=no',
    '',
    '[Install]',
    'WantedBy=sockets.target',
    '',
  ].join('\n');
}
