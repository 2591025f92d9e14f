/** Device nodes a VM uses: /dev/kvm (hardware acceleration) and /dev/vhost-net (vhost=on). */
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import type { Finding } from './finding.js';

/** The name of group `gid` from /etc/group (files only: enough to name the fix), or its number. */
function groupName(gid: number, groupFile = '/etc/group'): string {
  try {
    for (const line of readFileSync(groupFile, 'utf8').split('\n')) {
      const [name, , id] = line.split(':');
      if (name !== undefined && id !== undefined && Number(id) === gid) return name;
    }
  } catch {
    // no /etc/group: the number will do
  }
  return String(gid);
}

/** Whether `path` opens read-write for this process; the errno name when not. */
function openable(path: string): string | undefined {
  try {
    closeSync(openSync(path, 'r+'));
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? 'error';
  }
}

/** Why a device this user cannot open is closed to them, and who could fix it. */
function accessFix(path: string, what: string): string {
  try {
    const st = statSync(path);
    if ((st.mode & 0o060) === 0o060 && st.gid !== 0) {
      const group = groupName(st.gid);
      return `ask an admin to add you to group ${group} (usermod -aG ${group} $USER), then log in again`;
    }
    return `${path} is mode ${(st.mode & 0o777).toString(8)} owned by uid ${st.uid}: ask an admin to give ${what} users access (usually group kvm, mode 0660)`;
  } catch {
    return `ask an admin about ${path}`;
  }
}

export function kvmFinding(path = '/dev/kvm'): Finding {
  const problem = openable(path);
  if (problem === undefined) return { level: 'ok', subject: 'kvm', text: `${path} is usable: VMs run with KVM` };
  if (problem === 'ENOENT') {
    return {
      level: 'warn', subject: 'kvm', text: `${path} does not exist: VMs run under TCG (emulation, much slower)`,
      fix: 'enable virtualization in the firmware and load kvm_intel or kvm_amd (or, in a VM, enable nested virtualization)',
    };
  }
  return { level: 'warn', subject: 'kvm', text: `${path} cannot be opened by you (${problem}): VMs run under TCG (emulation, much slower)`, fix: accessFix(path, 'KVM') };
}

/** /dev/vhost-net; a failure when a netdev asks for vhost=on and it cannot be opened. */
export function vhostFinding(needed: boolean, path = '/dev/vhost-net'): Finding {
  const problem = openable(path);
  if (problem === undefined) return { level: 'ok', subject: 'vhost-net', text: `${path} is usable: vhost=on works` };
  const why = problem === 'ENOENT' ? `${path} does not exist` : `${path} cannot be opened by you (${problem})`;
  const fix = problem === 'ENOENT' ? 'ask an admin to load the vhost_net module' : accessFix(path, 'vhost-net');
  return needed
    ? { level: 'fail', subject: 'vhost-net', text: `${why}, and a --netdev asks for vhost=on`, fix: `${fix}; or drop vhost=on` }
    : { level: 'warn', subject: 'vhost-net', text: `${why}: vhost=on would fail (without it virtio-net runs in qemu, slower)`, fix };
}
