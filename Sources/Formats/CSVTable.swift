import Foundation

/// Numeric CSV files (comma-separated; also whitespace- or semicolon-separated), optionally gzip-compressed (*.gz).
///
/// Discussion: The separator is chosen from the first data line: a semicolon if
/// it has one, otherwise a comma if it has one, otherwise runs of spaces and
/// tabs. A first line that is not entirely numeric is a header and is skipped. Blank lines are ignored, spaces around fields are trimmed, fields may
/// be wrapped in double quotes, and `nan`, `inf` and `-inf` (any capitalisation)
/// parse. Every row must have the same number of columns.
///
/// Rows in error messages are numbered like lines in an editor or a
/// spreadsheet: the first line of the file, header included, is row 1.
public struct CSVTable: Equatable, Sendable {
    /// The number of data rows (the header, if any, is not counted).
    public var rows: Int
    /// The number of values in each row.
    public var columns: Int
    /// The values, row after row.
    public var values: [Double]

    /// Creates a table from values already in memory.
    ///
    /// - Parameters:
    ///   - rows: The number of rows.
    ///   - columns: The number of columns.
    ///   - values: `rows × columns` values, row after row.
    public init(rows: Int, columns: Int, values: [Double]) {
        precondition(rows >= 0 && columns >= 0 && rows * columns == values.count, "CSVTable: \(rows) × \(columns) does not match \(values.count) values")
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    /// The values of one row.
    ///
    /// - Parameter index: A row index, `0..<rows`.
    /// - Returns: The row's `columns` values.
    public func row(_ index: Int) -> ArraySlice<Double> {
        values[(index * columns)..<((index + 1) * columns)]
    }

    /// The table as comma-separated text, one line per row, each value written with the fewest digits
    /// that read back to the same float64 (Swift's shortest round-trip form); no header.
    public func csvText() -> String {
        var text = ""
        text.reserveCapacity(values.count * 12)
        for index in 0..<rows {
            text += row(index).lazy.map { String($0) }.joined(separator: ",")
            text += "\n"
        }
        return text
    }

    /// Writes the table as CSV (see ``csvText()``), atomically.
    ///
    /// - Parameter url: The destination.
    /// - Throws: `FormatError` naming the file when it cannot be written.
    public func write(to url: URL) throws {
        try writeAtomically(Data(csvText().utf8), to: url)
    }

    /// Reads a CSV file; gunzips when the file starts with the gzip magic.
    ///
    /// - Parameter url: The file, plain or gzip-compressed.
    /// - Returns: The table.
    /// - Throws: `FormatError` naming the file when it cannot be read, fails to
    ///   decompress, or is not a numeric table (see `parse(_:file:)`).
    public static func read(from url: URL) throws(FormatError) -> CSVTable {
        var bytes = try formatsReadBytes(from: url, maximumBytes: maximumTextBytes, reason: textLimitReason)
        if Gzip.isCompressed(bytes) {
            bytes = try Gzip.decompress(bytes, file: url.path, maximumBytes: maximumTextBytes)
        }
        return try parse(bytes: bytes, file: url.path)
    }

    /// The most CSV text Kiln reads, plain or after decompression: 256 MiB. A value can take as little
    /// as two bytes (`0,`), and parsing holds a float64 per value and a 16-byte field range per value of
    /// the longest line, up to 12 bytes of memory per byte of text, before training makes float32 copies:
    /// 256 MiB of text can need 4 GiB. CSV is for tables people write and read; larger data belongs in
    /// `.npy` files, read at 4 bytes per float32 value.
    public static let maximumTextBytes = 256 << 20

    /// The most values in one row: a line beyond that is not a table anyone wrote by hand.
    public static let maximumColumns = 1_000_000

    static let textLimitReason = "CSV text parses into up to 12 times its size in memory; save large data as .npy"

    /// Parses CSV text.
    ///
    /// - Parameters:
    ///   - text: The whole file as text.
    ///   - file: The path or label to name in errors.
    /// - Returns: The table.
    /// - Throws: `FormatError` when there are no data rows, a row has a different
    ///   number of columns from the first, or a field is not a number.
    public static func parse(_ text: String, file: String) throws(FormatError) -> CSVTable {
        try parse(bytes: Array(text.utf8), file: file)
    }

    /// Parses CSV text given as UTF-8 bytes.
    ///
    /// - Parameters:
    ///   - bytes: The whole file.
    ///   - file: The path or label to name in errors.
    /// - Returns: The table.
    /// - Throws: `FormatError` as `parse(_:file:)` does.
    public static func parse(bytes: [UInt8], file: String) throws(FormatError) -> CSVTable {
        try bytes.withUnsafeBufferPointer { (buffer: UnsafeBufferPointer<UInt8>) throws(FormatError) -> CSVTable in
            var parser = FormatsCSVParser(bytes: buffer, file: file)
            return try parser.parse()
        }
    }
}

/// How fields in a line are separated.
private enum FormatsCSVSeparator {
    case comma, semicolon, whitespace
}

/// Splits lines into fields and fields into numbers, working on raw bytes.
private struct FormatsCSVParser {
    let bytes: UnsafeBufferPointer<UInt8>
    let file: String
    var values: [Double] = []
    var fieldRanges: [Range<Int>] = []

    /// Creates a parser over a file's bytes, naming `file` in errors.
    init(bytes: UnsafeBufferPointer<UInt8>, file: String) {
        self.bytes = bytes
        self.file = file
    }

    /// Parses every line.
    ///
    /// - Returns: The table.
    /// - Throws: `FormatError` for an empty file, a ragged row or a field that is not a number.
    mutating func parse() throws(FormatError) -> CSVTable {
        var start = 0
        // Skip a UTF-8 byte order mark.
        if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { start = 3 }
        var separator: FormatsCSVSeparator?
        var columns: Int?
        var rows = 0
        var lineNumber = 0
        var sawFirstLine = false

        while start < bytes.count {
            lineNumber += 1
            var end = start
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            let next = end + 1
            if end > start && bytes[end - 1] == 0x0D { end -= 1 }
            defer { start = next }
            let (lineStart, lineEnd) = trimmed(start, end)
            if lineStart == lineEnd { continue }

            let lineSeparator = separator ?? detectSeparator(lineStart, lineEnd)
            separator = lineSeparator
            guard splitFields(lineStart, lineEnd, separator: lineSeparator) else {
                throw FormatError(
                    file: file,
                    message: "row \(lineNumber) has more than \(CSVTable.maximumColumns) values, more than a CSV table Kiln reads; save large data as .npy"
                )
            }

            if !sawFirstLine {
                sawFirstLine = true
                if !fieldRanges.allSatisfy({ number($0) != nil }) {
                    // A header: skip it, and take the separator and width from the first data row.
                    separator = nil
                    continue
                }
            }
            let expected = columns ?? fieldRanges.count
            columns = expected
            if fieldRanges.count != expected {
                throw FormatError(
                    file: file,
                    message: "row \(lineNumber) has \(fieldRanges.count) columns, expected \(expected); fix that line so every row has the same number of values"
                )
            }
            for (column, range) in fieldRanges.enumerated() {
                guard let value = number(range) else {
                    throw FormatError(
                        file: file,
                        message: "row \(lineNumber) column \(column + 1): '\(excerpt(range))' is not a number; fix the value or remove the line"
                    )
                }
                values.append(value)
            }
            rows += 1
        }
        if rows == 0 {
            throw FormatError(
                file: file,
                message: sawFirstLine
                    ? "no numeric rows: the file has only a header line; check that it is the right file"
                    : "empty file: no rows found; check that the file was written completely"
            )
        }
        return CSVTable(rows: rows, columns: columns ?? 0, values: values)
    }

    /// The range with spaces and tabs removed from both ends.
    func trimmed(_ start: Int, _ end: Int) -> (Int, Int) {
        var lower = start
        var upper = end
        while lower < upper && (bytes[lower] == 0x20 || bytes[lower] == 0x09) { lower += 1 }
        while upper > lower && (bytes[upper - 1] == 0x20 || bytes[upper - 1] == 0x09) { upper -= 1 }
        return (lower, upper)
    }

    /// The separator a line uses: semicolon, else comma, else whitespace.
    func detectSeparator(_ start: Int, _ end: Int) -> FormatsCSVSeparator {
        var hasComma = false
        for index in start..<end {
            if bytes[index] == UInt8(ascii: ";") { return .semicolon }
            if bytes[index] == UInt8(ascii: ",") { hasComma = true }
        }
        return hasComma ? .comma : .whitespace
    }

    /// Fills `fieldRanges` with the trimmed fields of one (non-empty, trimmed) line.
    ///
    /// - Returns: false, with the fields left incomplete, when the line has more than
    ///   ``CSVTable/maximumColumns`` fields.
    mutating func splitFields(_ start: Int, _ end: Int, separator: FormatsCSVSeparator) -> Bool {
        fieldRanges.removeAll(keepingCapacity: true)
        switch separator {
        case .comma, .semicolon:
            let mark = separator == .comma ? UInt8(ascii: ",") : UInt8(ascii: ";")
            var fieldStart = start
            for index in start...end where index == end || bytes[index] == mark {
                let (lower, upper) = trimmed(fieldStart, index)
                fieldRanges.append(lower..<upper)
                if fieldRanges.count > CSVTable.maximumColumns { return false }
                fieldStart = index + 1
            }
        case .whitespace:
            var index = start
            while index < end {
                while index < end && (bytes[index] == 0x20 || bytes[index] == 0x09) { index += 1 }
                let fieldStart = index
                while index < end && bytes[index] != 0x20 && bytes[index] != 0x09 { index += 1 }
                if index > fieldStart { fieldRanges.append(fieldStart..<index) }
                if fieldRanges.count > CSVTable.maximumColumns { return false }
            }
        }
        return true
    }

    /// Parses one field as a number, or returns nil.
    ///
    /// Discussion: Plain integers of up to 15 digits, the common case in data
    /// files, are parsed directly; everything else goes through `Double(_:)`.
    func number(_ range: Range<Int>) -> Double? {
        var lower = range.lowerBound
        var upper = range.upperBound
        if upper - lower >= 2 && bytes[lower] == UInt8(ascii: "\"") && bytes[upper - 1] == UInt8(ascii: "\"") {
            lower += 1
            upper -= 1
            while lower < upper && bytes[lower] == 0x20 { lower += 1 }
            while upper > lower && bytes[upper - 1] == 0x20 { upper -= 1 }
        }
        guard lower < upper else { return nil }
        var index = lower
        var negative = false
        if bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
            negative = bytes[index] == UInt8(ascii: "-")
            index += 1
        }
        if index < upper && upper - index <= 15 {
            var value = 0
            var allDigits = true
            for position in index..<upper {
                let digit = bytes[position] &- UInt8(ascii: "0")
                if digit > 9 {
                    allDigits = false
                    break
                }
                value = value * 10 + Int(digit)
            }
            if allDigits { return negative ? -Double(value) : Double(value) }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[lower..<upper]), as: UTF8.self)
        if let value = Double(text) { return value }
        switch text.lowercased() {
        case "nan", "+nan", "-nan": return .nan
        case "inf", "+inf", "infinity", "+infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        default: return nil
        }
    }

    /// The field's text for an error message: at most 40 characters, control characters shown as '?'.
    func excerpt(_ range: Range<Int>) -> String {
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
        let cleaned = String(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) })
        return cleaned.count > 40 ? String(cleaned.prefix(40)) + "…" : cleaned
    }
}
