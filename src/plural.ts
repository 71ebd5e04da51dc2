/** "1 block", "2 blocks", "1 family", "3 families": counts in words, for every human-readable line. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
