/**
 * The one error the data loaders throw for problems a user can fix (a missing or malformed
 * file, a wrong setting). Messages are lowercase, name the file and say what to change; the
 * CLI prints them as they are.
 */
export class DataError extends Error {
  /** The file at fault, when there is one (absolute path). */
  readonly file: string | undefined;
  constructor(message: string, file?: string) {
    super(message);
    this.name = 'DataError';
    this.file = file;
  }
}
