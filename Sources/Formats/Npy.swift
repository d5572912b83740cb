import Foundation

/// NumPy's .npy format, versions 1.0, 2.0 and 3.0.
///
/// Discussion: A .npy file is the magic string `\x93NUMPY`, a version, a header
/// length, a header that is a Python dictionary literal such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`, and then the
/// raw element data. Kiln reads every numeric and boolean dtype in either byte
/// order and either memory order, and keeps the values as `Double` in C
/// (row-major) order together with the dtype they had in the file. It writes
/// little-endian, C-order files in version 1.0 (2.0 when the header is longer
/// than 65,535 bytes), padded so the data starts at a multiple of 64 bytes as
/// NumPy does.
///
/// Values are held as `Double`, which is exact for every dtype except 64-bit
/// integers beyond ±2⁵³.
public struct NpyArray: Equatable, Sendable {
    /// The element types Kiln reads and writes.
    public enum DType: String, Sendable, CaseIterable {
        case float32, float64, int8, int16, int32, int64, uint8, uint16, uint32, uint64, bool

        /// The size of one element in bytes.
        public var byteCount: Int {
            switch self {
            case .int8, .uint8, .bool: return 1
            case .int16, .uint16: return 2
            case .float32, .int32, .uint32: return 4
            case .float64, .int64, .uint64: return 8
            }
        }

        /// NumPy's little-endian type string for this dtype, as written in headers (`"<f4"`, `"|b1"`, …).
        public var littleEndianDescriptor: String {
            switch self {
            case .float32: return "<f4"
            case .float64: return "<f8"
            case .int8: return "|i1"
            case .int16: return "<i2"
            case .int32: return "<i4"
            case .int64: return "<i8"
            case .uint8: return "|u1"
            case .uint16: return "<u2"
            case .uint32: return "<u4"
            case .uint64: return "<u8"
            case .bool: return "|b1"
            }
        }
    }

    /// The size of each dimension; `[]` for a scalar.
    public var shape: [Int]
    /// The element type stored in (or to write to) the file.
    public var dtype: DType
    /// The elements in row-major (C) order, converted to `Double`.
    public var values: [Double]

    /// Creates a float32 array.
    ///
    /// - Parameters:
    ///   - shape: The dimensions; their product must equal `floats.count`.
    ///   - floats: The elements in row-major order.
    public init(shape: [Int], floats: [Float]) {
        var converted = [Double](repeating: 0, count: floats.count)
        converted.withUnsafeMutableBufferPointer { destination in
            floats.withUnsafeBufferPointer { source in
                for index in 0..<source.count { destination[index] = Double(source[index]) }
            }
        }
        self.init(shape: shape, values: converted, dtype: .float32)
    }

    /// Creates an array of any dtype.
    ///
    /// - Parameters:
    ///   - shape: The dimensions, none negative; their product must equal `values.count`.
    ///   - values: The elements in row-major order.
    ///   - dtype: The element type to write.
    public init(shape: [Int], values: [Double], dtype: DType) {
        precondition(shape.allSatisfy { $0 >= 0 }, "NpyArray: shape \(shape) has a negative dimension")
        precondition(
            shape.reduce(1, *) == values.count,
            "NpyArray: shape \(shape) holds \(shape.reduce(1, *)) elements but \(values.count) values were given"
        )
        self.shape = shape
        self.values = values
        self.dtype = dtype
    }

    /// The elements as `Float`, in row-major order.
    public var floats: [Float] {
        values.withUnsafeBufferPointer { source in
            [Float](unsafeUninitializedCapacity: source.count) { destination, initialized in
                for index in 0..<source.count { destination[index] = Float(source[index]) }
                initialized = source.count
            }
        }
    }

    /// The values as Int32 labels; throws if any value is not an integer in Int32's range (names the first bad index).
    ///
    /// - Parameter file: The path or label to name in the error.
    /// - Returns: The values converted to `Int32`, in row-major order.
    /// - Throws: `FormatError` naming the first value that is fractional, non-finite
    ///   or outside `Int32.min...Int32.max`.
    public func integers(file: String) throws(FormatError) -> [Int32] {
        try values.withUnsafeBufferPointer { (source: UnsafeBufferPointer<Double>) throws(FormatError) -> [Int32] in
            var badIndex: Int?
            let result = [Int32](unsafeUninitializedCapacity: source.count) { destination, initialized in
                for index in 0..<source.count {
                    let value = source[index]
                    guard value >= -2_147_483_648, value <= 2_147_483_647, value.rounded(.towardZero) == value else {
                        badIndex = index
                        break
                    }
                    destination[index] = Int32(value)
                    initialized = index + 1
                }
            }
            if let badIndex {
                throw FormatError(
                    file: file,
                    message: "value \(source[badIndex]) at index \(badIndex) is not an integer in Int32's range; labels must be whole numbers, check that this is the right file"
                )
            }
            return result
        }
    }

    // MARK: Reading

    /// Reads a .npy file.
    ///
    /// - Parameter url: The file to read.
    /// - Returns: The array, in C order.
    /// - Throws: `FormatError` naming the file when it cannot be read or is not a
    ///   valid .npy file of a supported dtype (see `decode(_:file:)`).
    public static func read(from url: URL) throws(FormatError) -> NpyArray {
        try decode(try formatsReadBytes(from: url), file: url.path)
    }

    /// Decodes the bytes of a .npy file.
    ///
    /// Discussion: Accepts versions 1.0, 2.0 and 3.0; byte orders `<`, `>`, `|`
    /// and `=`; `fortran_order` true (converted to C order) or false; and shapes of
    /// any rank, including `()` scalars and zero-length dimensions. Bytes after
    /// the data are ignored, as NumPy does.
    ///
    /// - Parameters:
    ///   - bytes: The whole file.
    ///   - file: The path or label to name in errors.
    /// - Returns: The array, in C order.
    /// - Throws: `FormatError` for a bad magic string, an unsupported version, a
    ///   header that is not a valid dictionary, an unsupported dtype, a negative
    ///   or overflowing shape, or data shorter than the shape needs.
    public static func decode(_ bytes: [UInt8], file: String) throws(FormatError) -> NpyArray {
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard bytes.count >= 8, Array(bytes[0..<6]) == magic else {
            let prefixMatches = bytes.count < 8 && zip(bytes, magic).allSatisfy { $0 == $1 }
            throw FormatError(
                file: file,
                message: prefixMatches && !bytes.isEmpty
                    ? "truncated: the file ends inside the .npy preamble; save the array again"
                    : "not a .npy file (it does not start with the \\x93NUMPY magic string); save the array with numpy.save"
            )
        }
        let major = bytes[6]
        let minor = bytes[7]
        let lengthFieldSize: Int
        switch (major, minor) {
        case (1, 0): lengthFieldSize = 2
        case (2, 0), (3, 0): lengthFieldSize = 4
        default:
            throw FormatError(
                file: file,
                message: "unsupported .npy format version \(major).\(minor); Kiln reads versions 1.0, 2.0 and 3.0, re-save the array with numpy.save"
            )
        }
        let headerStart = 8 + lengthFieldSize
        guard bytes.count >= headerStart else {
            throw FormatError(file: file, message: "truncated: the file ends inside the .npy header length; save the array again")
        }
        var headerLength = 0
        for index in 0..<lengthFieldSize { headerLength |= Int(bytes[8 + index]) << (8 * index) }
        let dataStart = headerStart + headerLength
        guard dataStart <= bytes.count else {
            throw FormatError(
                file: file,
                message: "truncated: the header is \(headerLength) bytes but the file ends after \(bytes.count - headerStart); save the array again"
            )
        }

        let header = try parseNpyHeader(Array(bytes[headerStart..<dataStart]), file: file)
        let descriptor = try parseNpyDescriptor(header.descriptor, file: file)

        var count = 1
        for dimension in header.shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else {
                throw FormatError(file: file, message: "the shape \(header.shape) is too large to hold; the header is corrupted")
            }
            count = product
        }
        let (needed, overflow) = count.multipliedReportingOverflow(by: descriptor.dtype.byteCount)
        let available = bytes.count - dataStart
        guard !overflow, needed <= available else {
            throw FormatError(
                file: file,
                message: "truncated: expected \(overflow ? "more than \(Int.max)" : String(needed)) bytes of data, found \(available); the file is incomplete, save the array again"
            )
        }

        var values = [Double](repeating: 0, count: count)
        values.withUnsafeMutableBufferPointer { destination in
            bytes.withUnsafeBytes { raw in
                guard let base = raw.baseAddress, let output = destination.baseAddress else { return }
                convertNpyElements(
                    from: base + dataStart, count: count, dtype: descriptor.dtype,
                    bigEndian: descriptor.bigEndian, into: output
                )
            }
        }
        if header.fortranOrder && header.shape.count > 1 && count > 0 {
            values = npyReorderFortranToC(values, shape: header.shape)
        }
        return NpyArray(checkedShape: header.shape, values: values, dtype: descriptor.dtype)
    }

    /// Creates an array whose shape and values are already known to agree.
    private init(checkedShape: [Int], values: [Double], dtype: DType) {
        self.shape = checkedShape
        self.values = values
        self.dtype = dtype
    }

    // MARK: Writing

    /// The bytes of a .npy file holding this array.
    ///
    /// Discussion: Floats are written as `'<f4'`/`'<f8'` and integers and booleans
    /// little-endian in their dtype, in C order. Values that do not fit an integer
    /// dtype are rounded to the nearest integer and clamped to its range (NaN
    /// becomes 0); for `bool`, every non-zero value becomes `True`. The header
    /// is padded with spaces and a newline so that the data starts at a multiple
    /// of 64 bytes; the version is 1.0, or 2.0 if the header needs more than
    /// 65,535 bytes.
    ///
    /// - Returns: The complete file. `values.count` must equal the product of `shape`.
    public func encoded() -> [UInt8] {
        let count = shape.reduce(1, *)
        precondition(count == values.count, "NpyArray: shape \(shape) holds \(count) elements but there are \(values.count) values")
        let shapeText: String
        switch shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(shape[0]),)"
        default: shapeText = "(" + shape.map(String.init).joined(separator: ", ") + ")"
        }
        let dictionary = "{'descr': '\(dtype.littleEndianDescriptor)', 'fortran_order': False, 'shape': \(shapeText), }"
        var version: UInt8 = 1
        var preambleSize = 10
        var paddedLength = (preambleSize + dictionary.utf8.count + 1 + 63) / 64 * 64 - preambleSize
        if paddedLength > 65_535 {
            version = 2
            preambleSize = 12
            paddedLength = (preambleSize + dictionary.utf8.count + 1 + 63) / 64 * 64 - preambleSize
        }
        var bytes: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, version, 0]
        let lengthFieldSize = version == 1 ? 2 : 4
        for index in 0..<lengthFieldSize { bytes.append(UInt8(truncatingIfNeeded: paddedLength >> (8 * index))) }
        bytes.append(contentsOf: dictionary.utf8)
        bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: paddedLength - dictionary.utf8.count - 1))
        bytes.append(UInt8(ascii: "\n"))

        let dataStart = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: count * dtype.byteCount))
        bytes.withUnsafeMutableBytes { raw in
            values.withUnsafeBufferPointer { source in
                guard let base = raw.baseAddress else { return }
                let destination = base + dataStart
                // One loop per dtype, each storing little-endian elements straight into the buffer.
                func store<T: FixedWidthInteger>(_ convert: (Double) -> T) {
                    for index in 0..<source.count {
                        destination.storeBytes(
                            of: convert(source[index]).littleEndian, toByteOffset: index * MemoryLayout<T>.size, as: T.self
                        )
                    }
                }
                switch dtype {
                case .float32: store { Float($0).bitPattern }
                case .float64: store { $0.bitPattern }
                case .int8: store { Int8(npyClampedInteger($0, Int8.min, Int8.max)) }
                case .int16: store { Int16(npyClampedInteger($0, Int16.min, Int16.max)) }
                case .int32: store { Int32(npyClampedInteger($0, Int32.min, Int32.max)) }
                case .int64: store { npyClampedInteger($0, Int64.min, Int64.max) }
                case .uint8: store { UInt8(npyClampedUnsigned($0, UInt8.max)) }
                case .uint16: store { UInt16(npyClampedUnsigned($0, UInt16.max)) }
                case .uint32: store { UInt32(npyClampedUnsigned($0, UInt32.max)) }
                case .uint64: store { npyClampedUnsigned($0, UInt64.max) }
                case .bool: store { $0 != 0 ? UInt8(1) : UInt8(0) }
                }
            }
        }
        return bytes
    }

    /// Writes the array as a .npy file, through a temporary file in the same folder and a rename.
    ///
    /// - Parameter url: The destination; its folder must exist.
    /// - Throws: `FormatError` naming the file when it cannot be written.
    public func write(to url: URL) throws {
        try writeAtomically(encoded(), to: url)
    }
}

// MARK: - Header parsing

/// The three fields of a .npy header.
private struct NpyHeader {
    var descriptor: NpyHeaderDescriptor
    var fortranOrder: Bool
    var shape: [Int]
}

/// A header's `descr`: a type string such as `'<f4'`, or the list of fields of a structured dtype.
private enum NpyHeaderDescriptor {
    case typeString(String)
    /// The list as written, for the error message.
    case structured(String)
}

/// A dtype as written in a header: its type and whether the data is big-endian.
private struct NpyDescriptor {
    var dtype: NpyArray.DType
    var bigEndian: Bool
}

/// Parses a header in the fixed form `numpy.lib.format` writes:
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`, padded with spaces and a line break.
///
/// Discussion: The keys may come in any order, with a trailing comma or not; strings
/// may use either quote; integers may carry Python 2's `L` suffix. This is not a
/// general Python-literal parser: anything NumPy does not write is an error.
private func parseNpyHeader(_ bytes: [UInt8], file: String) throws(FormatError) -> NpyHeader {
    var scanner = NpyHeaderScanner(bytes: bytes)
    do throws(NpyHeaderScanner.Failure) {
        try scanner.scanDictionary()
    } catch {
        let excerpt = String(decoding: bytes.prefix(80), as: UTF8.self).filter { !$0.isNewline }
        throw FormatError(
            file: file,
            message: "the .npy header is not a valid Python dictionary (\(error.reason) at byte \(error.offset) of \"\(excerpt)\"); the file is corrupted, save the array again"
        )
    }
    func corrupted(_ problem: String) -> FormatError {
        FormatError(file: file, message: "the .npy header \(problem); the file is corrupted, save the array again")
    }
    guard let descriptor = scanner.descriptor else { throw corrupted("has no 'descr' entry") }
    guard let fortranOrder = scanner.fortranOrder else { throw corrupted("has no 'fortran_order' entry") }
    guard let (dimensions, text) = scanner.shape else { throw corrupted("has no 'shape' entry") }
    var shape: [Int] = []
    for dimension in dimensions {
        guard let size = dimension, size >= 0 else {
            throw FormatError(
                file: file,
                message: "the .npy header's 'shape' \(text) has an entry that is not a non-negative integer; the file is corrupted, save the array again"
            )
        }
        shape.append(size)
    }
    return NpyHeader(descriptor: descriptor, fortranOrder: fortranOrder, shape: shape)
}

/// Maps a header's `descr` to a supported dtype and byte order.
private func parseNpyDescriptor(_ descriptor: NpyHeaderDescriptor, file: String) throws(FormatError) -> NpyDescriptor {
    let supported = "Kiln reads float32, float64, int8, int16, int32, int64, uint8, uint16, uint32, uint64 and bool; convert the array with numpy (for example a.astype(np.float32)) and save it again"
    let text: String
    switch descriptor {
    case .structured(let fields):
        throw FormatError(file: file, message: "unsupported dtype \(fields) (a structured dtype); \(supported)")
    case .typeString(let string):
        text = string
    }
    var code = Substring(text)
    var bigEndian = false
    if let first = code.first, "<>|=".contains(first) {
        // '=' and '|' mean the writer's native order; every platform Kiln runs on is little-endian.
        bigEndian = first == ">"
        code = code.dropFirst()
    }
    let dtype: NpyArray.DType?
    switch code {
    case "f4": dtype = .float32
    case "f8": dtype = .float64
    case "i1": dtype = .int8
    case "i2": dtype = .int16
    case "i4": dtype = .int32
    case "i8": dtype = .int64
    case "u1": dtype = .uint8
    case "u2": dtype = .uint16
    case "u4": dtype = .uint32
    case "u8": dtype = .uint64
    case "b1", "?": dtype = .bool
    default: dtype = nil
    }
    guard let dtype else {
        let kind: String
        switch code.first {
        case "U": kind = "a Unicode string dtype"
        case "S", "a": kind = "a byte string dtype"
        case "O": kind = "a Python object dtype"
        case "c": kind = "a complex dtype"
        case "f": kind = code == "f2" ? "float16" : "a floating-point size Kiln does not read"
        case "M": kind = "a datetime dtype"
        case "m": kind = "a timedelta dtype"
        case "V": kind = "a void or structured dtype"
        default: kind = "an unknown dtype"
        }
        throw FormatError(file: file, message: "unsupported dtype '\(text)' (\(kind)); \(supported)")
    }
    return NpyDescriptor(dtype: dtype, bigEndian: bigEndian)
}

/// Reads the three entries of a .npy header dictionary.
private struct NpyHeaderScanner {
    /// Where and why the header stops being in NumPy's form.
    struct Failure: Error {
        var offset: Int
        var reason: String
    }

    let bytes: [UInt8]
    var offset = 0
    var descriptor: NpyHeaderDescriptor?
    var fortranOrder: Bool?
    /// The dimensions (nil where an entry is not an integer) and the tuple as written.
    var shape: (dimensions: [Int?], text: String)?

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    func failure(_ reason: String) -> Failure {
        Failure(offset: offset, reason: reason)
    }

    /// The byte at the current offset, or nil at the end.
    var current: UInt8? { offset < bytes.count ? bytes[offset] : nil }

    /// Skips spaces, line breaks and the NUL padding some writers use.
    mutating func skipSpace() {
        while let byte = current, [0x20, 0x09, 0x0A, 0x0D, 0x00].contains(byte) { offset += 1 }
    }

    /// Consumes one expected character after optional space.
    mutating func expect(_ character: Character) throws(Failure) {
        skipSpace()
        guard current == character.asciiValue else { throw failure(current == nil ? "the header ends early" : "expected '\(character)'") }
        offset += 1
    }

    /// The whole dictionary, which must be all the header holds apart from padding.
    mutating func scanDictionary() throws(Failure) {
        try expect("{")
        var seen: Set<String> = []
        while true {
            skipSpace()
            if current == UInt8(ascii: "}") { break }
            let key = try quoted()
            guard seen.insert(key).inserted else { throw failure("the key '\(key)' appears twice") }
            try expect(":")
            skipSpace()
            switch key {
            case "descr": descriptor = try scanDescriptor()
            case "fortran_order": fortranOrder = try scanBoolean()
            case "shape": shape = try scanShape()
            default: throw failure("unexpected key '\(key)' (NumPy writes 'descr', 'fortran_order' and 'shape')")
            }
            skipSpace()
            guard current != UInt8(ascii: "}") else { continue }
            try expect(",")
        }
        offset += 1
        skipSpace()
        guard current == nil else { throw failure("unexpected text after the dictionary") }
    }

    /// A single- or double-quoted string; a backslash keeps the next character.
    mutating func quoted() throws(Failure) -> String {
        guard let quote = current, quote == UInt8(ascii: "'") || quote == UInt8(ascii: "\"") else { throw failure("expected a quoted string") }
        offset += 1
        var collected: [UInt8] = []
        while let byte = current, byte != quote {
            if byte == UInt8(ascii: "\\") { offset += 1 }
            guard let kept = current else { break }
            collected.append(kept)
            offset += 1
        }
        try expect(Character(Unicode.Scalar(quote)))
        return String(decoding: collected, as: UTF8.self)
    }

    /// `descr`: a type string, or a structured dtype's list of fields, kept as written.
    mutating func scanDescriptor() throws(Failure) -> NpyHeaderDescriptor {
        guard current == UInt8(ascii: "[") else { return .typeString(try quoted()) }
        let start = offset
        var depth = 0
        repeat {
            switch current {
            case UInt8(ascii: "["), UInt8(ascii: "("): depth += 1
            case UInt8(ascii: "]"), UInt8(ascii: ")"): depth -= 1
            case UInt8(ascii: "'"), UInt8(ascii: "\""): _ = try quoted(); continue
            case nil: throw failure("the header ends inside the list of a structured dtype")
            default: break
            }
            offset += 1
        } while depth > 0
        return .structured(String(decoding: bytes[start..<offset], as: UTF8.self))
    }

    /// `True` or `False`.
    mutating func scanBoolean() throws(Failure) -> Bool {
        for (word, value) in [("True", true), ("False", false)] where bytes[offset...].starts(with: word.utf8) {
            offset += word.utf8.count
            return value
        }
        throw failure("'fortran_order' is not True or False")
    }

    /// `shape`: a tuple of integers such as `()`, `(3,)` or `(2, 3)`.
    mutating func scanShape() throws(Failure) -> (dimensions: [Int?], text: String) {
        let start = offset
        try expect("(")
        guard let end = bytes[start...].firstIndex(of: UInt8(ascii: ")")) else { throw failure("the header ends inside the 'shape' tuple") }
        offset = end + 1
        let entries = bytes[(start + 1)..<end].split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespaces) }
        // A trailing comma, as in (3,), leaves one empty entry at the end.
        let dimensions = (entries.last == "" ? entries.dropLast() : entries[...]).map { entry in
            Int(entry.hasSuffix("L") || entry.hasSuffix("l") ? String(entry.dropLast()) : entry)
        }
        return (dimensions, String(decoding: bytes[start...end], as: UTF8.self))
    }
}

// MARK: - Element conversion

/// Converts raw elements of a dtype to `Double`.
///
/// - Parameters:
///   - source: The first byte of the data (any alignment).
///   - count: How many elements to convert.
///   - dtype: The element type.
///   - bigEndian: Whether the elements are stored big-endian.
///   - destination: Room for `count` doubles.
private func convertNpyElements(
    from source: UnsafeRawPointer, count: Int, dtype: NpyArray.DType, bigEndian: Bool,
    into destination: UnsafeMutablePointer<Double>
) {
    @inline(__always)
    func load<T: FixedWidthInteger>(_ type: T.Type, _ index: Int) -> T {
        let raw = source.loadUnaligned(fromByteOffset: index * MemoryLayout<T>.size, as: T.self)
        return bigEndian ? T(bigEndian: raw) : T(littleEndian: raw)
    }
    switch dtype {
    case .float32:
        for index in 0..<count { destination[index] = Double(Float(bitPattern: load(UInt32.self, index))) }
    case .float64:
        for index in 0..<count { destination[index] = Double(bitPattern: load(UInt64.self, index)) }
    case .int8:
        for index in 0..<count { destination[index] = Double(load(Int8.self, index)) }
    case .int16:
        for index in 0..<count { destination[index] = Double(load(Int16.self, index)) }
    case .int32:
        for index in 0..<count { destination[index] = Double(load(Int32.self, index)) }
    case .int64:
        for index in 0..<count { destination[index] = Double(load(Int64.self, index)) }
    case .uint8:
        for index in 0..<count { destination[index] = Double(load(UInt8.self, index)) }
    case .uint16:
        for index in 0..<count { destination[index] = Double(load(UInt16.self, index)) }
    case .uint32:
        for index in 0..<count { destination[index] = Double(load(UInt32.self, index)) }
    case .uint64:
        for index in 0..<count { destination[index] = Double(load(UInt64.self, index)) }
    case .bool:
        for index in 0..<count { destination[index] = load(UInt8.self, index) != 0 ? 1 : 0 }
    }
}

/// Reorders elements stored in Fortran (column-major) order into C (row-major) order.
///
/// - Parameters:
///   - values: The elements in Fortran order.
///   - shape: The array's dimensions (rank ≥ 2, no zero dimension).
/// - Returns: The same elements in C order.
private func npyReorderFortranToC(_ values: [Double], shape: [Int]) -> [Double] {
    let rank = shape.count
    var fortranStrides = [Int](repeating: 1, count: rank)
    for axis in 1..<rank { fortranStrides[axis] = fortranStrides[axis - 1] * shape[axis - 1] }
    var index = [Int](repeating: 0, count: rank)
    return values.withUnsafeBufferPointer { source in
        [Double](unsafeUninitializedCapacity: source.count) { destination, initialized in
            var sourceOffset = 0
            for position in 0..<source.count {
                destination[position] = source[sourceOffset]
                var axis = rank - 1
                while axis >= 0 {
                    index[axis] += 1
                    sourceOffset += fortranStrides[axis]
                    if index[axis] < shape[axis] { break }
                    sourceOffset -= fortranStrides[axis] * shape[axis]
                    index[axis] = 0
                    axis -= 1
                }
            }
            initialized = source.count
        }
    }
}

/// Rounds a value to the nearest integer and clamps it into a signed range (NaN gives 0).
private func npyClampedInteger<T: FixedWidthInteger & SignedInteger>(_ value: Double, _ lower: T, _ upper: T) -> Int64 {
    guard !value.isNaN else { return 0 }
    let rounded = value.rounded()
    if rounded <= Double(lower) { return Int64(lower) }
    // Double(Int64.max) rounds up to 2^63, so compare with ≥.
    if rounded >= Double(upper) { return Int64(upper) }
    return Int64(rounded)
}

/// Rounds a value to the nearest integer and clamps it into `0...upper` (NaN gives 0).
private func npyClampedUnsigned<T: FixedWidthInteger & UnsignedInteger>(_ value: Double, _ upper: T) -> UInt64 {
    guard !value.isNaN else { return 0 }
    let rounded = value.rounded()
    if rounded <= 0 { return 0 }
    if rounded >= Double(upper) { return UInt64(upper) }
    return UInt64(rounded)
}
