/**
 * Is this file a statically linked ELF executable (no PT_INTERP program header)? A binary
 * bind-mounted into any image must not need the image's dynamic loader or libraries. Pure.
 */
const PT_INTERP = 3;

export function isStaticElf(head: Buffer): boolean {
  if (head.length < 64 || head.readUInt32BE(0) !== 0x7f454c46) return false;
  const is64 = head[4] === 2;
  const little = head[5] === 1;
  const u16 = (o: number): number => (little ? head.readUInt16LE(o) : head.readUInt16BE(o));
  const u32 = (o: number): number => (little ? head.readUInt32LE(o) : head.readUInt32BE(o));
  const u64 = (o: number): number => Number(little ? head.readBigUInt64LE(o) : head.readBigUInt64BE(o));
  const type = u16(16);
  if (type !== 2 && type !== 3) return false; // ET_EXEC or ET_DYN (static-pie)
  const phoff = is64 ? u64(32) : u32(28);
  const phentsize = u16(is64 ? 54 : 42);
  const phnum = u16(is64 ? 56 : 44);
  if (phnum === 0 || phoff + phnum * phentsize > head.length) return false;
  for (let i = 0; i < phnum; i++) {
    if (u32(phoff + i * phentsize) === PT_INTERP) return false;
  }
  return true;
}
