import Foundation

/// The safetensors format (https://github.com/huggingface/safetensors): 8-byte little-endian header length, a JSON header, then the data.
///
/// Discussion: The header is a JSON object whose keys are tensor names, each
/// mapping to `{"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}`
/// with offsets in bytes relative to the start of the data section, plus an
/// optional `"__metadata__"` object of string values. The tensors' byte ranges
/// must tile the data section exactly: no gaps, no overlaps, nothing left over.
///
/// Kiln writes `F32` tensors, little-endian, laid out in the order given, with
/// the header padded with spaces to a multiple of 8 bytes. It reads `F32`, `F64`,
/// `F16` and `BF16` tensors, converting them to `Float`, and checks every rule
/// of the format, reporting violations as `FormatError`s.
public struct SafeTensorsFile: Equatable, Sendable {
    /// One named tensor with its values as `Float` in row-major order.
    public struct Tensor: Equatable, Sendable {
        /// The tensor's key in the header.
        public var name: String
        /// The size of each dimension; `[]` for a scalar.
        public var shape: [Int]
        /// The elements in row-major order; as many as the product of `shape`.
        public var values: [Float]

        /// Creates a tensor.
        ///
        /// - Parameters:
        ///   - name: The tensor's key in the header; must not be `"__metadata__"`.
        ///   - shape: The dimensions, none negative.
        ///   - values: The elements in row-major order; their count must equal the product of `shape`.
        public init(name: String, shape: [Int], values: [Float]) {
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// The tensors, in file order (the order of their data).
    public var tensors: [Tensor]
    /// The header's "__metadata__" (string → string).
    public var metadata: [String: String]

    /// Creates a file's contents.
    ///
    /// - Parameters:
    ///   - tensors: The tensors, in the order their data will be laid out.
    ///   - metadata: Free-form string metadata; written only when non-empty.
    public init(tensors: [Tensor], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The first tensor with a name.
    ///
    /// - Parameter name: The tensor's key in the header.
    /// - Returns: The tensor, or nil when there is none of that name.
    public func tensor(named name: String) -> Tensor? {
        tensors.first { $0.name == name }
    }

    // MARK: Writing

    /// Why these contents cannot be written, or nil when they can.
    ///
    /// - Parameter file: The path or label to name in the error.
    /// - Returns: An error for a reserved or repeated name, a negative dimension,
    ///   or values that do not match their shape.
    public func validationError(file: String) -> FormatError? {
        var seen = Set<String>()
        for tensor in tensors {
            if tensor.name == "__metadata__" {
                return FormatError(file: file, message: "a tensor is named \"__metadata__\", which the format reserves; rename it")
            }
            if !seen.insert(tensor.name).inserted {
                return FormatError(file: file, message: "two tensors are named \"\(tensor.name)\"; give every tensor a unique name")
            }
            if tensor.shape.contains(where: { $0 < 0 }) {
                return FormatError(file: file, message: "tensor \"\(tensor.name)\" has a negative dimension in shape \(tensor.shape); fix the shape")
            }
            var count = 1
            for dimension in tensor.shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
                if overflow {
                    return FormatError(file: file, message: "tensor \"\(tensor.name)\" has shape \(tensor.shape), too large to hold; fix the shape")
                }
                count = product
            }
            if count != tensor.values.count {
                return FormatError(
                    file: file,
                    message: "tensor \"\(tensor.name)\" has shape \(tensor.shape) (\(count) elements) but \(tensor.values.count) values; make them agree"
                )
            }
        }
        return nil
    }

    /// The bytes of a safetensors file holding these tensors.
    ///
    /// Discussion: Every tensor is written as `F32`, little-endian, contiguously in
    /// the order of `tensors`. The header lists `"__metadata__"` first (keys
    /// sorted, only when non-empty), then the tensors in order, and is padded with
    /// spaces so the data starts at a multiple of 8 bytes. The contents must pass
    /// `validationError(file:)`; `write(to:)` checks that and throws instead.
    ///
    /// - Returns: The complete file.
    public func encoded() -> [UInt8] {
        if let error = validationError(file: "SafeTensorsFile") {
            preconditionFailure(error.description)
        }
        // The header is composed in file order ("__metadata__" first, then the tensors in data order), with
        // Foundation's encoder writing each name and the metadata object.
        let encoder = JSONFile.encoder()
        func quoted(_ text: String) -> String { String(decoding: (try? encoder.encode(text)) ?? Data(), as: UTF8.self) }
        var entries: [String] = []
        if !metadata.isEmpty {
            entries.append("\"__metadata__\":" + String(decoding: (try? encoder.encode(metadata)) ?? Data(), as: UTF8.self))
        }
        var offset = 0
        for tensor in tensors {
            let end = offset + tensor.values.count * 4
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            entries.append(quoted(tensor.name) + ":{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        let header = "{" + entries.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }

        var bytes = [UInt8](repeating: 0, count: 8 + headerBytes.count + offset)
        bytes.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            base.storeBytes(of: UInt64(headerBytes.count).littleEndian, as: UInt64.self)
            headerBytes.withUnsafeBytes { source in
                if let headerBase = source.baseAddress { (base + 8).copyMemory(from: headerBase, byteCount: source.count) }
            }
            var position = 8 + headerBytes.count
            for tensor in tensors {
                tensor.values.withUnsafeBufferPointer { values in
                    for index in 0..<values.count {
                        base.storeBytes(of: values[index].bitPattern.littleEndian, toByteOffset: position + index * 4, as: UInt32.self)
                    }
                }
                position += tensor.values.count * 4
            }
        }
        return bytes
    }

    /// Writes the file to a temporary file in the same folder, fsyncs it, then renames it,
    /// so a crash never leaves a torn file.
    ///
    /// - Parameter url: The destination; its folder must exist.
    /// - Throws: `FormatError` naming the file when the contents are invalid (see
    ///   `validationError(file:)`) or the file cannot be written.
    public func write(to url: URL) throws {
        if let error = validationError(file: url.path) { throw error }
        try writeAtomically(encoded(), to: url)
    }

    // MARK: Reading

    /// Reads a safetensors file.
    ///
    /// - Parameter url: The file to read.
    /// - Returns: The tensors in file order and the metadata.
    /// - Throws: `FormatError` naming the file when it cannot be read or breaks
    ///   any rule of the format (see `decode(_:file:)`).
    public static func read(from url: URL) throws(FormatError) -> SafeTensorsFile {
        try decode(try formatsReadBytes(from: url), file: url.path)
    }

    /// Decodes the bytes of a safetensors file.
    ///
    /// Discussion: Checks the header length against the file size, that the
    /// header is a JSON object, that every tensor entry has a supported `dtype`
    /// (F32, F64, F16 or BF16), a non-negative integer `shape` and `data_offsets`
    /// matching the shape, that the tensors' data tile the data section without
    /// gaps or overlaps, and that metadata values are strings. Tensors are
    /// returned in the order of their data.
    ///
    /// - Parameters:
    ///   - bytes: The whole file.
    ///   - file: The path or label to name in errors.
    /// - Returns: The tensors in file order and the metadata.
    /// - Throws: `FormatError` describing the first rule the file breaks.
    public static func decode(_ bytes: [UInt8], file: String) throws(FormatError) -> SafeTensorsFile {
        func failure(_ message: String) -> FormatError {
            FormatError(file: file, message: message)
        }
        let corrupted = "the file is corrupted or not a safetensors file, write it again"
        guard bytes.count >= 8 else {
            throw failure("the file is \(bytes.count) bytes, shorter than the 8-byte header length; it is truncated or not a safetensors file")
        }
        var headerLength: UInt64 = 0
        for index in 0..<8 { headerLength |= UInt64(bytes[index]) << UInt64(8 * index) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw failure("the header length \(headerLength) runs past the end of the file (\(bytes.count) bytes); the file is truncated or not a safetensors file")
        }
        guard headerLength <= 100_000_000 else {
            throw failure("the header length \(headerLength) is over the format's 100 MB limit; \(corrupted)")
        }
        let headerEnd = 8 + Int(headerLength)
        guard headerLength > 0, bytes[8] == UInt8(ascii: "{") else {
            throw failure("the header is not a JSON object (it must start with '{'); \(corrupted)")
        }
        let header: SafeTensorsHeader
        do {
            header = try JSONDecoder().decode(SafeTensorsHeader.self, from: Data(bytes[8..<headerEnd]))
        } catch {
            throw failure("\(SafeTensorsHeader.describe(error)); \(corrupted)")
        }
        let metadata = header.metadata
        var layouts: [SafeTensorsLayout] = []
        for (name, entry) in header.entries {
            layouts.append(try SafeTensorsLayout(name: name, entry: entry, file: file))
        }

        // The tensors' byte ranges must tile the data section exactly.
        layouts.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var expected = 0
        var previous: String?
        for layout in layouts {
            if layout.begin < expected {
                throw failure("tensor \"\(layout.name)\" overlaps tensor \"\(previous ?? "")\" (data_offsets start at \(layout.begin), before \(expected)); \(corrupted)")
            }
            if layout.begin > expected {
                throw failure("there is a gap in the data before tensor \"\(layout.name)\" (bytes \(expected)..<\(layout.begin) belong to no tensor); \(corrupted)")
            }
            expected = layout.end
            previous = layout.name
        }
        let dataSize = bytes.count - headerEnd
        if expected > dataSize {
            throw failure("truncated: the header describes \(expected) bytes of tensor data but the file holds \(dataSize); the file is incomplete, copy or write it again")
        }
        if expected < dataSize {
            throw failure("the file has \(dataSize - expected) bytes after the last tensor's data, which the format forbids; \(corrupted)")
        }

        var tensors: [Tensor] = []
        tensors.reserveCapacity(layouts.count)
        bytes.withUnsafeBytes { raw in
            for layout in layouts {
                let values = [Float](unsafeUninitializedCapacity: layout.count) { destination, initialized in
                    if let base = raw.baseAddress {
                        convertSafeTensorsData(base + headerEnd + layout.begin, count: layout.count, dtype: layout.dtype, into: destination)
                    }
                    initialized = layout.count
                }
                tensors.append(Tensor(name: layout.name, shape: layout.shape, values: values))
            }
        }
        return SafeTensorsFile(tensors: tensors, metadata: metadata)
    }
}

/// The data types Kiln reads from safetensors files.
private enum SafeTensorsDType: String {
    case float32 = "F32", float64 = "F64", float16 = "F16", bfloat16 = "BF16"

    var byteCount: Int {
        switch self {
        case .float32: return 4
        case .float64: return 8
        case .float16, .bfloat16: return 2
        }
    }
}

/// One tensor's header entry, checked.
private struct SafeTensorsLayout {
    var name: String
    var dtype: SafeTensorsDType
    var shape: [Int]
    var count: Int
    var begin: Int
    var end: Int

    /// Checks a tensor's header entry.
    ///
    /// - Throws: `FormatError` when a field is missing, the dtype is unsupported,
    ///   or the offsets do not match the shape.
    init(name: String, entry: SafeTensorsHeader.Entry, file: String) throws(FormatError) {
        let advice = "the file is corrupted or not a safetensors file, write it again"
        func failure(_ message: String) -> FormatError {
            FormatError(file: file, message: "tensor \"\(name)\": \(message)")
        }
        guard let dtypeText = entry.dtype, let shapeValues = entry.shape, let offsetValues = entry.dataOffsets else {
            let missing = [("dtype", entry.dtype == nil), ("shape", entry.shape == nil), ("data_offsets", entry.dataOffsets == nil)]
                .filter(\.1).map(\.0).joined(separator: ", ")
            throw failure("the header entry is missing \(missing); \(advice)")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeText) else {
            throw failure("unsupported dtype \"\(dtypeText)\"; Kiln reads F32, F64, F16 and BF16, convert the tensor to float32 before saving")
        }
        guard let shape = shapeValues.integers else {
            throw failure("\"shape\" is not an array of integers; \(advice)")
        }
        guard let offsets = offsetValues.integers, offsets.count == 2 else {
            throw failure("\"data_offsets\" is not a pair of integers [begin, end]; \(advice)")
        }
        var count = 1
        for dimension in shape {
            guard dimension >= 0 else {
                throw failure("\"shape\" \(shape) has a negative dimension; \(advice)")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw failure("the shape is too large to hold; \(advice)") }
            count = product
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin >= 0, begin <= end else {
            throw failure("\"data_offsets\" [\(begin), \(end)] is not a valid range; \(advice)")
        }
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: dtype.byteCount)
        guard !overflow, end - begin == byteCount else {
            throw failure("\"data_offsets\" [\(begin), \(end)] span \(end - begin) bytes but shape \(shape) of \(dtypeText) needs \(overflow ? "too many" : String(byteCount)); \(advice)")
        }
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.count = count
        self.begin = begin
        self.end = end
    }
}

/// Converts little-endian elements of a safetensors dtype to `Float`.
///
/// - Parameters:
///   - source: The first byte of the tensor's data (any alignment).
///   - count: How many elements to convert.
///   - dtype: The stored element type.
///   - destination: Room for `count` floats.
private func convertSafeTensorsData(
    _ source: UnsafeRawPointer, count: Int, dtype: SafeTensorsDType, into destination: UnsafeMutableBufferPointer<Float>
) {
    switch dtype {
    case .float32:
        for index in 0..<count {
            destination[index] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)))
        }
    case .float64:
        for index in 0..<count {
            destination[index] = Float(Double(bitPattern: UInt64(littleEndian: source.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self))))
        }
    case .float16:
        for index in 0..<count {
            let bits = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self))
            destination[index] = Float(Float16(bitPattern: bits))
        }
    case .bfloat16:
        // bfloat16 is the top half of a float32.
        for index in 0..<count {
            let bits = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self))
            destination[index] = Float(bitPattern: UInt32(bits) << 16)
        }
    }
}

extension Array<Double> {
    /// The values as integers, or nil when one is fractional or out of `Int`'s range.
    fileprivate var integers: [Int]? {
        var result: [Int] = []
        for value in self {
            guard let integer = Int(exactly: value) else { return nil }
            result.append(integer)
        }
        return result
    }
}

/// A safetensors header as Foundation decodes it: each tensor's entry by name, and the metadata.
///
/// Discussion: Fields are decoded as optionals so that a missing one is reported
/// by name; a field of the wrong type stops the decoding, and `describe(_:)` names it.
struct SafeTensorsHeader: Decodable {
    /// One tensor's `{"dtype", "shape", "data_offsets"}`.
    ///
    /// Discussion: The integers are decoded as doubles (exact below 2⁵³) and checked
    /// afterwards, since Foundation reports a fraction where an `Int` is expected only as
    /// "not valid JSON", without saying where.
    struct Entry: Decodable {
        var dtype: String?
        var shape: [Double]?
        var dataOffsets: [Double]?

        enum CodingKeys: String, CodingKey {
            case dtype, shape, dataOffsets = "data_offsets"
        }
    }

    /// A key of the header object: a tensor's name or `"__metadata__"`.
    struct Name: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    var entries: [(name: String, entry: Entry)] = []
    var metadata: [String: String] = [:]

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Name.self)
        for key in container.allKeys {
            if key.stringValue == "__metadata__" {
                metadata = try container.decode([String: String].self, forKey: key)
            } else {
                entries.append((key.stringValue, try container.decode(Entry.self, forKey: key)))
            }
        }
    }

    /// What was wrong with a header that did not decode, as a clause of an error message.
    static func describe(_ error: any Error) -> String {
        let context: DecodingError.Context
        switch error as? DecodingError {
        case let .typeMismatch(_, found)?, let .valueNotFound(_, found)?: context = found
        case let .dataCorrupted(found)? where !found.codingPath.isEmpty: context = found
        case let .dataCorrupted(found)?:
            return "the header is not valid JSON" + (found.underlyingError.map { " (\(formatsOneLine(String(describing: $0))))" } ?? "")
        default: return "the header cannot be read (\(formatsOneLine(String(describing: error))))"
        }
        let path = context.codingPath.map(\.stringValue)
        switch (path.first, path.dropFirst().first) {
        case (nil, _): return "the header is not a JSON object"
        case ("__metadata__"?, nil): return "\"__metadata__\" is not a JSON object of strings"
        case ("__metadata__"?, let key?): return "the metadata value for \"\(key)\" is not a string (the format allows only strings)"
        case (let name?, nil): return "tensor \"\(name)\": the header entry is not a JSON object"
        case (let name?, "dtype"?): return "tensor \"\(name)\": \"dtype\" is not a string"
        case (let name?, "shape"?): return "tensor \"\(name)\": \"shape\" is not an array of integers"
        case (let name?, _): return "tensor \"\(name)\": \"data_offsets\" is not a pair of integers [begin, end]"
        }
    }
}
