/**
 * The guest of xkvm's first run: a disk image the project makes itself (nothing to download)
 * whose boot sector prints two lines and then makes qemu exit on its own.
 *
 * The image is 1 MiB of zeros behind an MBR boot sector (0x55 0xAA at offset 510, an empty
 * partition table) holding hand-assembled 16-bit real-mode code that SeaBIOS loads at 0000:7C00:
 *
 *   1. waits for one BIOS timer tick (see "SeaBIOS serial console" below);
 *   2. sets COM1 (0x3F8) to 115200 8N1 and writes each line to it, polling the line status
 *      register (bounded, so a missing UART cannot hang the guest), then hands the same line to
 *      the video BIOS (int 10h AH=13h "write string" at the cursor) so a VGA display shows it;
 *   3. powers off: ACPI S5 through the PIIX4 power-management function (PCI 00:01.3, the `-M pc`
 *      chipset: PM1a_CNT = PMBA + 4, SLP_TYP 0 | SLP_EN, as qemu's DSDT defines \_S5 and as
 *      SeaBIOS programs PMBA); where that function is absent (q35) or ignores the write, it
 *      loads an empty IDT and executes int3, a triple fault, which qemu turns into an exit with
 *      status 0 under `-no-reboot` (what the launcher passes). Both paths were checked with
 *      QEMU 7.2: `-M pc` exits 0 with and without `-no-reboot`; `-M q35` exits 0 with it.
 *
 * SeaBIOS serial console: with `-nographic` qemu tells SeaBIOS (fw_cfg "etc/sercon-port") to
 * mirror int 10h output onto COM1. Its mirror is lazy: it holds back the last character it was
 * given (the final "." of "Booting from Hard Disk...") and sends it, with cursor movements, on
 * its next int 10h teletype call or timer tick. Two consequences shape the code:
 *   - the lines go to the video BIOS with AH=13h, which the mirror leaves to the VGA BIOS,
 *     not with AH=0Eh teletype, which it would copy onto COM1 character by character and
 *     interleave with our own output ("kxvkmv mt itniyn..." was the result);
 *   - the guest waits for one timer tick before writing, so the held-back "." and its line
 *     break reach COM1 before our first line, never in the middle of it.
 *
 * Size: SeaBIOS 1.16 does not boot a virtio-blk disk smaller than 512 KiB ("could not read the
 * boot disk"); IDE boots any size. 1 MiB works for both.
 *
 * The bytes below were assembled by hand and cross-checked with nasm 2.16 (`nasm -f bin`, org
 * 0x7c00); nasm is not needed to build or use them. Each line is one instruction: its bytes,
 * its address, its source. Absolute and relative operands name their target's address.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** The first line the guest prints on COM1 (and the VGA screen). */
const TINY_GUEST_BOOT_LINE = 'xkvm tiny guest: booted';
/** The last line the guest prints before it powers off. */
const TINY_GUEST_OFF_LINE = 'xkvm tiny guest: powering off';
/** Size of the image in bytes: 1 MiB (virtio-blk disks under 512 KiB do not boot in SeaBIOS). */
const TINY_GUEST_IMAGE_BYTES = 1024 * 1024;

/** Where the BIOS loads the boot sector. */
const LOAD_ADDRESS = 0x7c00;
/** Addresses baked into the code below; tinyGuestImage() checks the data really lands there. */
const IDT0 = 0x7cb4;
const MSG_BOOT = 0x7cba;
const MSG_OFF = 0x7cd4;
/** Bytes 446..509 are the (empty) partition table; the code and its data must end before it. */
const PARTITION_TABLE = 446;

const CODE: readonly number[] = [
  // start:
  0xfa,                                // 7c00  cli
  0x31, 0xc0,                          // 7c01  xor ax, ax
  0x8e, 0xd8,                          // 7c03  mov ds, ax                 ; ds = es = ss = 0
  0x8e, 0xc0,                          // 7c05  mov es, ax
  0x8e, 0xd0,                          // 7c07  mov ss, ax
  0xbc, 0x00, 0x7c,                    // 7c09  mov sp, 0x7c00             ; stack grows down from the boot sector
  0xfc,                                // 7c0c  cld
  0xfb,                                // 7c0d  sti
  0xa1, 0x6c, 0x04,                    // 7c0e  mov ax, [0x046c]           ; BIOS tick counter (0040:006C)
  // wait_tick:                            (see "SeaBIOS serial console" above)
  0xf4,                                // 7c11  hlt
  0x3b, 0x06, 0x6c, 0x04,              // 7c12  cmp ax, [0x046c]
  0x74, 0xf9,                          // 7c16  je wait_tick               ; wait_tick = 7c11
  0xba, 0xf9, 0x03,                    // 7c18  mov dx, 0x3f9              ; COM1 IER
  0x30, 0xc0,                          // 7c1b  xor al, al
  0xee,                                // 7c1d  out dx, al                 ; no UART interrupts
  0xb2, 0xfb,                          // 7c1e  mov dl, 0xfb               ; COM1 LCR
  0xb0, 0x80,                          // 7c20  mov al, 0x80
  0xee,                                // 7c22  out dx, al                 ; DLAB = 1
  0xb2, 0xf8,                          // 7c23  mov dl, 0xf8               ; COM1 DLL
  0xb0, 0x01,                          // 7c25  mov al, 0x01
  0xee,                                // 7c27  out dx, al                 ; divisor 1: 115200 baud
  0x42,                                // 7c28  inc dx                     ; COM1 DLM
  0x30, 0xc0,                          // 7c29  xor al, al
  0xee,                                // 7c2b  out dx, al
  0xb2, 0xfb,                          // 7c2c  mov dl, 0xfb               ; COM1 LCR
  0xb0, 0x03,                          // 7c2e  mov al, 0x03
  0xee,                                // 7c30  out dx, al                 ; 8N1, DLAB = 0
  0x4a,                                // 7c31  dec dx                     ; COM1 FCR
  0xb0, 0xc7,                          // 7c32  mov al, 0xc7
  0xee,                                // 7c34  out dx, al                 ; FIFO on and cleared
  0xb2, 0xfc,                          // 7c35  mov dl, 0xfc               ; COM1 MCR
  0xb0, 0x03,                          // 7c37  mov al, 0x03
  0xee,                                // 7c39  out dx, al                 ; DTR + RTS
  0xbe, 0xba, 0x7c,                    // 7c3a  mov si, msg_boot           ; msg_boot = 7cba
  0xe8, 0x42, 0x00,                    // 7c3d  call print                 ; print = 7c82
  0xbe, 0xd4, 0x7c,                    // 7c40  mov si, msg_off            ; msg_off = 7cd4
  0xe8, 0x3c, 0x00,                    // 7c43  call print                 ; print = 7c82
  0xba, 0xf8, 0x0c,                    // 7c46  mov dx, 0xcf8              ; PCI config address
  0x66, 0xb8, 0x00, 0x0b, 0x00, 0x80,  // 7c49  mov eax, 0x80000b00        ; 00:01.3 register 0x00
  0x66, 0xef,                          // 7c4f  out dx, eax
  0xb2, 0xfc,                          // 7c51  mov dl, 0xfc               ; PCI config data
  0x66, 0xed,                          // 7c53  in eax, dx
  0x66, 0x3d, 0x86, 0x80, 0x13, 0x71,  // 7c55  cmp eax, 0x71138086        ; PIIX4 power management function?
  0x75, 0x1b,                          // 7c5b  jne fault                  ; fault = 7c78
  0xb2, 0xf8,                          // 7c5d  mov dl, 0xf8               ; PCI config address
  0x66, 0xb8, 0x40, 0x0b, 0x00, 0x80,  // 7c5f  mov eax, 0x80000b40        ; 00:01.3 register 0x40: PMBA
  0x66, 0xef,                          // 7c65  out dx, eax
  0xb2, 0xfc,                          // 7c67  mov dl, 0xfc               ; PCI config data
  0xed,                                // 7c69  in ax, dx
  0x83, 0xe0, 0xc0,                    // 7c6a  and ax, 0xffc0             ; I/O base of the PM registers
  0x74, 0x09,                          // 7c6d  jz fault                   ; fault = 7c78
  0x83, 0xc0, 0x04,                    // 7c6f  add ax, 4                  ; PM1a_CNT
  0x92,                                // 7c72  xchg dx, ax
  0xb8, 0x00, 0x20,                    // 7c73  mov ax, 0x2000             ; SLP_EN with SLP_TYP 0 (S5, soft off)
  0xef,                                // 7c76  out dx, ax
  0xf4,                                // 7c77  hlt                        ; give qemu a tick to act on it
  // fault:
  0x0f, 0x01, 0x1e, 0xb4, 0x7c,        // 7c78  lidt [idt0]                ; idt0 = 7cb4; empty IDT: the next interrupt triple faults
  0xcc,                                // 7c7d  int3
  0xfa,                                // 7c7e  cli
  // halt:
  0xf4,                                // 7c7f  hlt
  0xeb, 0xfd,                          // 7c80  jmp halt                   ; halt = 7c7f
  // print:                                si = NUL-terminated string; out to COM1, then int 10h
  0x89, 0xf5,                          // 7c82  mov bp, si                 ; es:bp = string for int 10h AH=13h
  0x31, 0xc9,                          // 7c84  xor cx, cx                 ; cx = length
  // print_next:
  0xac,                                // 7c86  lodsb
  0x84, 0xc0,                          // 7c87  test al, al
  0x74, 0x18,                          // 7c89  jz print_vga               ; print_vga = 7ca3
  0x41,                                // 7c8b  inc cx
  0x88, 0xc4,                          // 7c8c  mov ah, al
  0xba, 0xfd, 0x03,                    // 7c8e  mov dx, 0x3fd              ; COM1 LSR
  0xbb, 0xff, 0xff,                    // 7c91  mov bx, 0xffff             ; bounded wait
  // print_wait:
  0xec,                                // 7c94  in al, dx
  0xa8, 0x20,                          // 7c95  test al, 0x20              ; transmit holding register empty?
  0x75, 0x03,                          // 7c97  jnz print_send             ; print_send = 7c9c
  0x4b,                                // 7c99  dec bx
  0x75, 0xf8,                          // 7c9a  jnz print_wait             ; print_wait = 7c94
  // print_send:
  0xb2, 0xf8,                          // 7c9c  mov dl, 0xf8               ; COM1 THR
  0x88, 0xe0,                          // 7c9e  mov al, ah
  0xee,                                // 7ca0  out dx, al
  0xeb, 0xe3,                          // 7ca1  jmp print_next             ; print_next = 7c86
  // print_vga:
  0x51,                                // 7ca3  push cx
  0xb4, 0x03,                          // 7ca4  mov ah, 0x03               ; get cursor position of page bh into dh:dl
  0x30, 0xff,                          // 7ca6  xor bh, bh
  0xcd, 0x10,                          // 7ca8  int 0x10
  0x59,                                // 7caa  pop cx
  0xb8, 0x01, 0x13,                    // 7cab  mov ax, 0x1301             ; write string at dh:dl, move the cursor
  0xbb, 0x07, 0x00,                    // 7cae  mov bx, 0x0007             ; page 0, light grey on black
  0xcd, 0x10,                          // 7cb1  int 0x10
  0xc3,                                // 7cb3  ret
];

/** The empty IDT that `lidt [idt0]` loads: limit 0, base 0. */
const IDT: readonly number[] = [
  0x00, 0x00,                          // 7cb4  dw 0                       ; limit 0
  0x00, 0x00, 0x00, 0x00,              // 7cb6  dd 0                       ; base 0
];

/** A line as the guest stores it: ASCII, CR LF, NUL. */
function cString(line: string): number[] {
  if (!/^[\x20-\x7e]*$/.test(line)) throw new Error(`tiny guest: not printable ASCII: ${JSON.stringify(line)}`);
  return [...Buffer.from(`${line}\r\n`, 'ascii'), 0];
}

/**
 * The raw disk image: the boot sector followed by zeros, TINY_GUEST_IMAGE_BYTES long.
 * Throws if the data has moved away from the addresses the code uses (e.g. a line was edited
 * without re-assembling), so a broken image is never produced.
 * @internal The demo writes it with writeTinyGuest; tests look into the bytes themselves.
 */
export function tinyGuestImage(): Buffer {
  const bootLine = cString(TINY_GUEST_BOOT_LINE);
  const offLine = cString(TINY_GUEST_OFF_LINE);
  const layout: ReadonlyArray<readonly [string, number, number]> = [
    ['idt0', IDT0, LOAD_ADDRESS + CODE.length],
    ['msg_boot', MSG_BOOT, IDT0 + IDT.length],
    ['msg_off', MSG_OFF, MSG_BOOT + bootLine.length],
  ];
  for (const [label, expected, actual] of layout) {
    if (expected !== actual) {
      throw new Error(`tiny guest: ${label} is at 0x${actual.toString(16)}, the code expects 0x${expected.toString(16)}`);
    }
  }
  const sector = [...CODE, ...IDT, ...bootLine, ...offLine];
  if (sector.length > PARTITION_TABLE) throw new Error(`tiny guest: boot code is ${sector.length} bytes, more than ${PARTITION_TABLE}`);
  const image = Buffer.alloc(TINY_GUEST_IMAGE_BYTES);
  Buffer.from(sector).copy(image, 0);
  image[510] = 0x55;
  image[511] = 0xaa;
  return image;
}

/**
 * Writes the image to `path` atomically: into a new temporary file in the same directory,
 * flushed to disk, then renamed over `path`. On any failure the temporary file is removed and
 * `path` is left as it was.
 */
export async function writeTinyGuest(path: string): Promise<void> {
  const image = tinyGuestImage();
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', 0o644);
    try {
      await handle.writeFile(image);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}
