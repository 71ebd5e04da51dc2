/** Progress reporting, injected into long operations; the CLI adapts it to ora. */
export interface ProgressSink {
  /** A phase begins; `total` is in bytes (0 when unknown). */
  start(label: string, total: number): void;
  /** `bytes` more were processed. */
  advance(bytes: number): void;
  /** The phase ended. */
  done(): void;
}

export const noopProgress: ProgressSink = {
  start() {},
  advance() {},
  done() {},
};
