/** Findings about a file: errors break the format, warnings are producer quirks. */

export type Severity = 'error' | 'warning';

export interface Issue {
  severity: Severity;
  /** Stable rule identifier, e.g. "footer-checksum", "bat-overlap". */
  rule: string;
  /** One line, lower case, expected vs actual where it helps. */
  message: string;
}

export class IssueList {
  readonly items: Issue[] = [];

  error(rule: string, message: string): void {
    this.items.push({ severity: 'error', rule, message });
  }

  warn(rule: string, message: string): void {
    this.items.push({ severity: 'warning', rule, message });
  }

  get errors(): Issue[] {
    return this.items.filter((i) => i.severity === 'error');
  }

  get warnings(): Issue[] {
    return this.items.filter((i) => i.severity === 'warning');
  }
}
