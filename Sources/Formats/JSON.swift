import Foundation
import Synchronization

/// The JSON files Kiln writes and reads, through Foundation's `JSONEncoder` and `JSONDecoder`.
///
/// Discussion: Every file is compact JSON with sorted keys (so the same value
/// always gives the same text) and unescaped slashes. Numbers are lossless:
/// Foundation writes a `Double` in the shortest form that reads back to the same
/// value, and `JSONDecoder` reads it back to the same bits. (`JSONSerialization`
/// on Linux parses a number with a fraction into an `NSDecimalNumber`, whose
/// `Double` is one unit in the last place off for about one random double in five,
/// so Kiln reads numbers with `JSONDecoder`.) JSON has no NaN or infinity; Kiln
/// writes them as `null` (see `encodeNumber(_:forKey:)`).
public enum JSONFile {
    /// The encoder for every JSON file Kiln writes.
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// A value as one line of JSON, without a line break.
    ///
    /// - Parameter value: The value; its numbers must be finite.
    /// - Returns: UTF-8 JSON text, for example `{"loss":0.25,"step":3}`.
    /// - Throws: `EncodingError` when the value holds a NaN or infinity outside `encodeNumber`.
    public static func encoded(_ value: some Encodable) throws -> Data {
        try encoder().encode(value)
    }

    /// Decodes a JSON value.
    ///
    /// - Parameters:
    ///   - type: The type to decode.
    ///   - data: UTF-8 JSON text.
    ///   - file: The path or label to name in errors.
    /// - Returns: The decoded value.
    /// - Throws: `FormatError` saying which key or value is missing or has the wrong type, or that the
    ///   text is not JSON.
    public static func decode<Value: Decodable>(_ type: Value.Type, from data: Data, file: String) throws(FormatError) -> Value {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw FormatError(file: file, message: "\(describe(error)); fix or regenerate the file")
        }
    }

    /// Writes a value as a JSON file ending in a line break, atomically.
    ///
    /// - Parameters:
    ///   - value: The value to write.
    ///   - url: The destination; its folder must exist.
    /// - Throws: `FormatError` naming the file when it cannot be written.
    public static func write(_ value: some Encodable, to url: URL) throws {
        try writeAtomically(try encoded(value) + [0x0A], to: url)
    }

    /// What a decoding error says, on one line: where in the document and what was wrong.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return formatsOneLine("\(error)") }
        func place(_ context: DecodingError.Context) -> String {
            context.codingPath.isEmpty ? "" : " at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        }
        switch error {
        case let .keyNotFound(key, context):
            return "missing \"\(key.stringValue)\"\(place(context))"
        case let .typeMismatch(_, context), let .valueNotFound(_, context):
            return "wrong type\(place(context)): \(context.debugDescription)"
        case let .dataCorrupted(context):
            let detail = context.underlyingError.map { " (\(formatsOneLine(String(describing: $0))))" } ?? ""
            return context.codingPath.isEmpty ? "invalid JSON\(detail)" : "invalid value\(place(context)): \(context.debugDescription)\(detail)"
        @unknown default:
            return formatsOneLine("\(error)")
        }
    }
}

extension KeyedEncodingContainer {
    /// Writes a number, or `null` when it is nil, NaN or infinite (JSON has neither NaN nor infinity).
    public mutating func encodeNumber(_ value: Double?, forKey key: Key) throws {
        if let value, value.isFinite { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
    }

    /// Writes a number when there is one, `null` when it is NaN or infinite, and nothing when it is nil.
    public mutating func encodeNumberIfPresent(_ value: Double?, forKey key: Key) throws {
        if let value { try encodeNumber(value, forKey: key) }
    }
}

/// Appends one JSON value per line (JSON Lines), each line reaching the file as it is written.
///
/// Discussion: Each `write` sends one complete line to the operating system
/// with a single write, so a crash loses at most the line being written and
/// other programs can follow the file while training runs. When appending to a
/// file whose last line was cut off (say, by a crash), a line break is added
/// first so the new lines stay parseable. The writer is safe to share between
/// threads; lines never interleave.
public final class JSONLinesWriter: Sendable {
    /// The file being written.
    public let url: URL
    /// The open file; nil once closed.
    private let handle: Mutex<FileHandle?>

    /// Opens a JSON Lines file for writing.
    ///
    /// - Parameters:
    ///   - url: The file; its folder must exist.
    ///   - append: `true` to add lines after the existing ones (creating the file if
    ///     needed); `false` to start a new, empty file.
    /// - Throws: `FormatError` naming the file when it cannot be created or opened.
    public init(url: URL, append: Bool) throws {
        self.url = url
        let path = url.path
        let manager = FileManager.default
        if !append || !manager.fileExists(atPath: path) {
            guard manager.createFile(atPath: path, contents: nil) else {
                throw FormatError(file: path, message: "cannot create the file; check that the folder exists and is writable")
            }
        }
        do {
            let file = try FileHandle(forUpdating: url)
            let end = try file.seekToEnd()
            if end > 0 {
                try file.seek(toOffset: end - 1)
                if try file.read(upToCount: 1)?.first != 0x0A {
                    try file.write(contentsOf: Data([0x0A]))
                }
            }
            handle = Mutex(file)
        } catch {
            throw FormatError(file: path, message: "cannot open the file for writing (\(formatsReason(error))); check its permissions")
        }
    }

    /// Writes one value as one line.
    ///
    /// - Parameter value: The line's value, usually an object; its keys are written sorted.
    /// - Throws: `FormatError` naming the file when the writer is closed or the
    ///   write fails (for example, the disk is full).
    public func write(_ value: some Encodable) throws {
        let line = try JSONFile.encoded(value) + [0x0A]
        try handle.withLock { handle throws(FormatError) in
            guard let handle else {
                throw FormatError(file: url.path, message: "the JSON Lines writer was already closed; open a new one to write more")
            }
            do {
                try handle.write(contentsOf: line)
            } catch {
                throw FormatError(file: url.path, message: "cannot write a line (\(formatsReason(error))); check free disk space and permissions")
            }
        }
    }

    /// Flushes the file to disk and closes it; later writes throw. Calling it again does nothing.
    public func close() {
        handle.withLock { handle in
            try? handle?.synchronize()
            try? handle?.close()
            handle = nil
        }
    }

    deinit {
        close()
    }
}
