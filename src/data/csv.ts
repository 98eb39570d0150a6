/**
 * Parser for Planet-style label CSVs (`image_name,tags`, tags separated by spaces). Pure: it
 * takes the file's text, so the loader and `exp data stats` share it and tests feed it
 * strings. Real files arrive edited by hand and by spreadsheets, so it tolerates a BOM,
 * CRLF, stray spaces, empty tag fields, extra columns and RFC 4180 quoting, and reports
 * everything else as problems (data, not exceptions) with the file and line.
 */

/** The largest label CSV read (Planet's is 1.4 MB): a bigger file is not a label CSV. */
export const MAX_CSV_BYTES = 256 * 2 ** 20;

export type CsvProblemCode =
  | 'EMPTY_FILE'
  | 'MISSING_COLUMN'
  | 'EXTRA_COLUMN'
  | 'UNTERMINATED_QUOTE'
  | 'BAD_QUOTE'
  | 'FIELD_COUNT'
  | 'EMPTY_NAME'
  | 'DUPLICATE_NAME'
  | 'DUPLICATE_TAG';

export interface CsvProblem {
  code: CsvProblemCode;
  /** `error`: the file cannot be read as intended (rows were dropped or columns are missing). `warning`: tolerated. */
  severity: 'error' | 'warning';
  message: string;
  file: string;
  /** 1-based physical line where the offending record starts. */
  line: number;
}

export interface LabelRow {
  /** `image_name`, trimmed. */
  name: string;
  /** Tags in file order, without empty strings or repeats. Not checked against the vocabulary. */
  tags: string[];
  /** 1-based physical line where the record starts (records may span lines inside quotes). */
  line: number;
}

export interface LabelCsv {
  rows: LabelRow[];
  problems: CsvProblem[];
}

export interface RawRecord { fields: string[]; line: number }

/**
 * Splits CSV text into records per RFC 4180: `"` quotes a field, `""` inside quotes is a
 * quote, and quoted fields may hold commas and line breaks. LF, CRLF and lone CR all end a
 * record. Unquoted fields are trimmed, since spaces around them are never meaningful here.
 */
export function records(text: string, file: string, problems: CsvProblem[]): RawRecord[] {
  const out: RawRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false; // the current field started with a quote
  let inQuotes = false;
  let line = 1;
  let recordLine = 1;
  let badQuoteReported = false;
  const endField = (): void => { fields.push(quoted ? field : field.trim()); field = ''; quoted = false; };
  const endRecord = (): void => {
    endField();
    // Blank lines (and the final newline) are not records.
    if (!(fields.length === 1 && fields[0] === '')) out.push({ fields, line: recordLine });
    fields = [];
    badQuoteReported = false;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inQuotes) {
      if (c === '"') {
        if (text[i + 1] === '"') { field += '"'; i++; } else inQuotes = false;
      } else {
        if (c === '\n' || (c === '\r' && text[i + 1] !== '\n')) line++;
        field += c;
      }
      continue;
    }
    if (c === ',') endField();
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      line++;
      recordLine = line;
    } else if (c === '"' && field.trim() === '' && !quoted) {
      field = '';
      quoted = true;
      inQuotes = true;
    } else {
      if ((c === '"' || quoted) && c !== ' ' && c !== '\t' && !badQuoteReported) {
        badQuoteReported = true;
        problems.push({ code: 'BAD_QUOTE', severity: 'warning', file, line,
          message: `a quote inside an unquoted field, or text after a closing quote; read literally. Quote the whole field and double inner quotes ("a ""b"" c")` });
      }
      if (!(quoted && (c === ' ' || c === '\t'))) field += c;
    }
  }
  if (inQuotes) {
    problems.push({ code: 'UNTERMINATED_QUOTE', severity: 'error', file, line: recordLine,
      message: 'a quoted field is never closed, so the rest of the file was read as one field; add the closing quote' });
  }
  endRecord();
  return out;
}

/**
 * Parses a label CSV's text. `file` is only used in problems. The header must name the
 * columns `image_name` and `tags` (any order, other columns allowed with a warning); a
 * file without them gives a `MISSING_COLUMN` error and no rows. Duplicate image names keep
 * the first row and report the rest as errors, since the labels are then ambiguous.
 */
export function parseLabelCsv(text: string, file: string): LabelCsv {
  const problems: CsvProblem[] = [];
  const rows: LabelRow[] = [];
  const recs = records(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, file, problems);
  const header = recs[0];
  if (!header) {
    problems.push({ code: 'EMPTY_FILE', severity: 'error', file, line: 1, message: 'the file is empty; a label CSV starts with the header line image_name,tags' });
    return { rows, problems };
  }
  const cols = header.fields;
  const nameCol = cols.indexOf('image_name');
  const tagsCol = cols.indexOf('tags');
  const missing = [nameCol < 0 ? 'image_name' : '', tagsCol < 0 ? 'tags' : ''].filter(Boolean);
  if (missing.length > 0) {
    problems.push({ code: 'MISSING_COLUMN', severity: 'error', file, line: header.line,
      message: `the header has no column ${missing.map((m) => `'${m}'`).join(' or ')} (it has ${cols.map((c) => `'${c}'`).join(', ')}); the first line must be image_name,tags` });
    return { rows, problems };
  }
  const extra = cols.filter((_, i) => i !== nameCol && i !== tagsCol);
  if (extra.length > 0) {
    problems.push({ code: 'EXTRA_COLUMN', severity: 'warning', file, line: header.line,
      message: `column${extra.length === 1 ? '' : 's'} ${extra.map((c) => `'${c}'`).join(', ')} ignored; only image_name and tags are read` });
  }
  const need = Math.max(nameCol, tagsCol) + 1;
  const seen = new Map<string, number>();
  for (const { fields, line } of recs.slice(1)) {
    if (fields.length < need) {
      problems.push({ code: 'FIELD_COUNT', severity: 'error', file, line,
        message: `the row has ${fields.length} field${fields.length === 1 ? '' : 's'} but the header has ${cols.length}; row skipped` });
      continue;
    }
    if (fields.length > cols.length) {
      problems.push({ code: 'FIELD_COUNT', severity: 'warning', file, line,
        message: `the row has ${fields.length} fields but the header has ${cols.length}; the extra fields are ignored (quote a field that contains a comma)` });
    }
    const name = fields[nameCol]!.trim();
    if (name === '') {
      problems.push({ code: 'EMPTY_NAME', severity: 'error', file, line, message: 'image_name is empty; row skipped' });
      continue;
    }
    const first = seen.get(name);
    if (first !== undefined) {
      problems.push({ code: 'DUPLICATE_NAME', severity: 'error', file, line,
        message: `image_name '${name}' already appeared on line ${first}; this row is skipped and the first one kept` });
      continue;
    }
    seen.set(name, line);
    const split = fields[tagsCol]!.split(/\s+/).filter((t) => t !== '');
    const tags = [...new Set(split)];
    if (tags.length < split.length) {
      problems.push({ code: 'DUPLICATE_TAG', severity: 'warning', file, line, message: `a tag is repeated in '${fields[tagsCol]!.trim()}'; counted once` });
    }
    rows.push({ name, tags, line });
  }
  return { rows, problems };
}
