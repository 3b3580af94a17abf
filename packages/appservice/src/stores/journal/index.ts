export { AppendFile, parseRecordLine, type ReadLinesResult, readLines } from "./file.js";
export {
  DEFAULT_JOURNAL_COMPACT_AFTER_BYTES,
  DEFAULT_JOURNAL_FILE,
  JOURNAL_FORMAT_VERSION,
  JournalProcessedEventStore,
  TransactionJournal,
  type TransactionJournalOptions,
} from "./journal.js";
