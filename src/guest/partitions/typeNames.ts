/**
 * Human names of partition types, for reports only: vhdtool never decides
 * what a partition holds by its type (see detect.ts), so a missing or wrong
 * name here changes nothing but a label.
 */

/** MBR type byte -> name (the common ones; sfdisk's and the Linux kernel's lists agree on these). */
const MBR_TYPES: ReadonlyMap<number, string> = new Map([
  [0x01, 'FAT12'],
  [0x04, 'FAT16 <32M'],
  [0x05, 'Extended'],
  [0x06, 'FAT16'],
  [0x07, 'NTFS/exFAT/HPFS'],
  [0x0b, 'FAT32'],
  [0x0c, 'FAT32 (LBA)'],
  [0x0e, 'FAT16 (LBA)'],
  [0x0f, 'Extended (LBA)'],
  [0x11, 'Hidden FAT12'],
  [0x12, 'Compaq diagnostics'],
  [0x14, 'Hidden FAT16 <32M'],
  [0x16, 'Hidden FAT16'],
  [0x17, 'Hidden NTFS/exFAT/HPFS'],
  [0x1b, 'Hidden FAT32'],
  [0x1c, 'Hidden FAT32 (LBA)'],
  [0x1e, 'Hidden FAT16 (LBA)'],
  [0x27, 'Hidden NTFS (Windows recovery)'],
  [0x42, 'Windows dynamic disk (LDM)'],
  [0x82, 'Linux swap'],
  [0x83, 'Linux'],
  [0x85, 'Linux extended'],
  [0x8e, 'Linux LVM'],
  [0xa5, 'FreeBSD'],
  [0xa6, 'OpenBSD'],
  [0xa8, 'Darwin UFS'],
  [0xa9, 'NetBSD'],
  [0xaf, 'HFS/HFS+'],
  [0xbc, 'Acronis backup'],
  [0xde, 'Dell utility'],
  [0xee, 'GPT protective'],
  [0xef, 'EFI System'],
  [0xfb, 'VMware VMFS'],
  [0xfc, 'VMware VMKCORE'],
  [0xfd, 'Linux RAID autodetect'],
]);

/** GPT type GUID (lower case) -> name. */
const GPT_TYPES: ReadonlyMap<string, string> = new Map([
  ['c12a7328-f81f-11d2-ba4b-00a0c93ec93b', 'EFI System'],
  ['21686148-6449-6e6f-744e-656564454649', 'BIOS boot'],
  ['024dee41-33e7-11d3-9d69-0008c781f39f', 'MBR partition scheme'],
  ['e3c9e316-0b5c-4db8-817d-f92df00215ae', 'Microsoft reserved'],
  ['ebd0a0a2-b9e5-4433-87c0-68b6b72699c7', 'Microsoft basic data'],
  ['de94bba4-06d1-4d40-a16a-bfd50179d6ac', 'Windows recovery environment'],
  ['5808c8aa-7e8f-42e0-85d2-e1e90434cfb3', 'Windows LDM metadata'],
  ['af9b60a0-1431-4f62-bc68-3311714a69ad', 'Windows LDM data'],
  ['e75caf8f-f680-4cee-afa3-b001e56efc2d', 'Windows Storage Spaces'],
  ['0fc63daf-8483-4772-8e79-3d69d8477de4', 'Linux filesystem'],
  ['0657fd6d-a4ab-43c4-84e5-0933c84b4f4f', 'Linux swap'],
  ['e6d6d379-f507-44c2-a23c-238f2a3df928', 'Linux LVM'],
  ['a19d880f-05fc-4d3b-a006-743f0f84911e', 'Linux RAID'],
  ['933ac7e1-2eb4-4f13-b844-0e14e2aef915', 'Linux home'],
  ['4f68bce3-e8cd-4db1-96e7-fbcaf984b709', 'Linux root (x86-64)'],
  ['44479540-f297-41b2-9af7-d131d5f0458a', 'Linux root (x86)'],
  ['b921b045-1df0-41c3-af44-4c6f280d3fae', 'Linux root (ARM64)'],
  ['bc13c2ff-59e6-4262-a352-b275fd6f7172', 'Linux extended boot'],
  ['ca7d7ccb-63ed-4c53-861c-1742536059cc', 'Linux LUKS'],
  ['83bd6b9d-7f41-11dc-be0b-001560b84f0f', 'FreeBSD boot'],
  ['516e7cb4-6ecf-11d6-8ff8-00022d09712b', 'FreeBSD data'],
  ['516e7cb5-6ecf-11d6-8ff8-00022d09712b', 'FreeBSD swap'],
  ['516e7cb6-6ecf-11d6-8ff8-00022d09712b', 'FreeBSD UFS'],
  ['516e7cb8-6ecf-11d6-8ff8-00022d09712b', 'FreeBSD Vinum'],
  ['516e7cba-6ecf-11d6-8ff8-00022d09712b', 'FreeBSD ZFS'],
  ['48465300-0000-11aa-aa11-00306543ecac', 'Apple HFS/HFS+'],
  ['7c3457ef-0000-11aa-aa11-00306543ecac', 'Apple APFS'],
  ['6a898cc3-1dd2-11b2-99a6-080020736631', 'Solaris /usr or Apple ZFS'],
  ['aa31e02a-400f-11db-9590-000c2911d1b8', 'VMware VMFS'],
]);

export function mbrTypeName(type: number): string | null {
  return MBR_TYPES.get(type) ?? null;
}

export function gptTypeName(guid: string): string | null {
  return GPT_TYPES.get(guid) ?? null;
}

/** MBR types that hold an EBR chain rather than a file system (DOS, Windows LBA, Linux). */
export function isExtendedType(type: number): boolean {
  return type === 0x05 || type === 0x0f || type === 0x85;
}

/** "0x07" */
export function hexType(type: number): string {
  return `0x${type.toString(16).padStart(2, '0')}`;
}
