import { GENERATED_MARKER } from './marker.js';

/**
 * The helper.conf install writes when none exists: default deny, the grammar explained, and
 * one directive, `audit-log /var/log/xkvm/audit.log` (the folder install makes), so that every
 * helper's records reach a file admins read: a pkexec'd helper's stderr is its caller's.
 * Where a folder above /var/log/xkvm can be changed by users other than root (Ubuntu's /var/log
 * is root:syslog 0775), the helper would refuse that audit-log and not start, so install writes
 * the same file with the line commented out instead (DEFAULT_CONFIG_NO_AUDIT_LOG) and says why.
 * Independent of --group, so uninstall can tell an untouched copy (removed) from an edited one
 * (kept) by comparing bytes. Install prints the `allow` line to add.
 */
const AUDITED = `# Every request is audited in the file below (and on stderr, the journal under
# systemd; a helper run by pkexec also sends its records to the system log).
audit-log /var/log/xkvm/audit.log
`;

const NOT_AUDITED_TO_A_FILE = `# Every request is audited on stderr (the journal under systemd; a helper run by
# pkexec also sends its records to the system log). install left this line out,
# because a folder above /var/log/xkvm can be changed by users other than root,
# and the helper refuses an audit-log there:
#   audit-log /var/log/xkvm/audit.log
`;

const TEMPLATE = `# /etc/xkvm/helper.conf: who may put taps on which bridges through xkvm-helper.
# ${GENERATED_MARKER} because no file was here. Edit it freely: install never
# overwrites it, and \`xkvm-helper uninstall\` removes it only while it is unchanged.
# It must stay owned by root and writable only by root, or the helper refuses to start.
#
# As written, nobody may do anything: the default is deny. Add allow lines.
@AUDIT@#
# One directive a line. A # starts a comment at the start of a line or after a space.
#
#   allow BRIDGE WHO...   let WHO put taps on BRIDGE. WHO is a user name, @group or *
#                         (anyone); BRIDGE is an exact bridge name or * (every bridge).
#   deny  BRIDGE WHO...   refuse; a matching deny wins over any allow, in any order.
#   max-taps N [WHO...]   taps one user may hold at once, all bridges together;
#                         without WHO (or with *) it changes the default of 16.
#   ovsdb SOCKET          Open vSwitch database for ovs-vsctl,
#                         e.g. unix:/run/openvswitch/db.sock
#   audit-log PATH        also append audit records here, one JSON object a line
#                         (they always go to stderr, the journal under systemd). Its
#                         folder must be root's alone, or the helper refuses to start;
#                         the systemd unit lets the helper write only under /var/log/xkvm.
#   include PATH          read another file of this grammar; it must be as safe as
#                         this one, and its errors stop the helper too.
#
# A line the helper cannot read stops it, with the file, the line and what was expected.
#
# Examples:
#   allow br0 @kvm                      members of group kvm may use bridge br0
#   allow ovsbr0 alice bob              alice and bob may use ovsbr0
#   deny * mallory                      mallory may use no bridge at all
#   max-taps 4 @students                at most 4 taps for each member of students
#   max-taps 32 alice                   alice may hold 32 (a user line beats groups)
#
# Check a decision:  xkvm-helper policy check --user alice --bridge br0
# Show the policy:   xkvm-helper policy show
`;

export const DEFAULT_CONFIG = TEMPLATE.replace('@AUDIT@', AUDITED);
export const DEFAULT_CONFIG_NO_AUDIT_LOG = TEMPLATE.replace('@AUDIT@', NOT_AUDITED_TO_A_FILE);
