import Foundation

/// gzip (RFC 1952) over DEFLATE (RFC 1951), written here because Foundation on Linux cannot inflate.
///
/// Discussion: `decompress` handles every block type DEFLATE defines (stored,
/// fixed Huffman and dynamic Huffman), several gzip members concatenated in one
/// file (as `cat a.gz b.gz` produces), and the optional header fields FEXTRA,
/// FNAME, FCOMMENT and FHCRC. Each member's CRC-32 and length are checked, so a
/// damaged file is reported instead of silently producing wrong data.
///
/// Huffman codes are decoded with one table lookup per symbol, and the output is
/// written through a raw pointer into a buffer sized from the stored length, so
/// a few megabytes inflate in milliseconds in a release build.
public enum Gzip {
    /// Whether the bytes start with the gzip magic number `1f 8b`.
    ///
    /// - Parameter bytes: The start of a file, or all of it.
    /// - Returns: `true` when the data looks gzip-compressed.
    public static func isCompressed(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
    }

    /// Decompresses a gzip file held in memory.
    ///
    /// Discussion: All members are decompressed and joined. Zero bytes after the
    /// last member (padding some tools add) are ignored; anything else after a
    /// member must be another gzip member.
    ///
    /// - Parameters:
    ///   - bytes: The complete contents of a `.gz` file.
    ///   - file: The path or label to name in errors.
    /// - Returns: The decompressed bytes.
    /// - Throws: `FormatError` when the data is not gzip, is truncated, is
    ///   corrupted (invalid codes, distances or block types), or fails its CRC-32
    ///   or length check.
    public static func decompress(_ bytes: [UInt8], file: String) throws(FormatError) -> [UInt8] {
        if bytes.isEmpty {
            throw FormatError(file: file, message: "the file is empty, not gzip data; check that it was written completely")
        }
        return try bytes.withUnsafeBufferPointer { (input: UnsafeBufferPointer<UInt8>) throws(FormatError) -> [UInt8] in
            guard let base = input.baseAddress else {
                throw FormatError(file: file, message: "the file is empty, not gzip data; check that it was written completely")
            }
            var inflater = GzipInflater(input: base, inputCount: input.count, file: file)
            defer { inflater.releaseBuffers() }
            try inflater.decompressMembers()
            return Array(UnsafeBufferPointer(start: inflater.output, count: inflater.outputCount))
        }
    }

    /// The CRC-32 (ISO 3309, as used by gzip, zip and PNG) of some bytes.
    ///
    /// - Parameter bytes: Any bytes.
    /// - Returns: The checksum, for example `0xCBF43926` for the ASCII text `"123456789"`.
    public static func crc32(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return 0 }
            return gzipUpdateCRC32(0, base, buffer.count)
        }
    }
}

/// The CRC-32 lookup table for the reflected polynomial 0xEDB88320.
private let gzipCRC32Table: [UInt32] = (0..<256).map { index -> UInt32 in
    var value = UInt32(index)
    for _ in 0..<8 {
        value = (value & 1) != 0 ? (value >> 1) ^ 0xEDB8_8320 : value >> 1
    }
    return value
}

/// Continues a CRC-32 over more bytes.
///
/// - Parameters:
///   - crc: The CRC of the bytes before (0 to start).
///   - bytes: The next bytes.
///   - count: How many bytes to read.
/// - Returns: The CRC of everything so far.
private func gzipUpdateCRC32(_ crc: UInt32, _ bytes: UnsafePointer<UInt8>, _ count: Int) -> UInt32 {
    gzipCRC32Table.withUnsafeBufferPointer { table in
        var value = ~crc
        for index in 0..<count {
            value = table[Int((value ^ UInt32(bytes[index])) & 0xff)] ^ (value >> 8)
        }
        return ~value
    }
}

/// Length symbols 257…285: base length in the low 16 bits, extra bits above.
private let deflateLengthCodes: [UInt32] = {
    let bases: [UInt32] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
                           35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    let extras: [UInt32] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
                            3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    return zip(bases, extras).map { $0 | ($1 << 16) }
}()

/// Distance symbols 0…29: base distance in the low 16 bits, extra bits above.
private let deflateDistanceCodes: [UInt32] = {
    let bases: [UInt32] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
                           257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
                           8193, 12289, 16385, 24577]
    let extras: [UInt32] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
                            7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
    return zip(bases, extras).map { $0 | ($1 << 16) }
}()

/// The order in which a dynamic block lists the code-length code's lengths.
private let deflateCodeLengthOrder: [Int] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

/// Which Huffman code a table is built for; they differ in what counts as valid.
private enum DeflateHuffmanKind {
    case codeLengths, literalLengths, distances
}

/// The state of one decompression: input bits, output buffer and decoding tables.
///
/// Discussion: Bits are kept in a 64-bit buffer, least significant bit first as
/// DEFLATE packs them. Near the end of the input the buffer is padded with zero
/// bytes; reading more than eight padding bytes, or finishing a member with
/// padding consumed, means the stream was truncated.
///
/// Huffman tables are flat: an entry for every `maximum length`-bit pattern
/// (bit-reversed code), holding `symbol << 4 | length`, 0 for an unused pattern.
private struct GzipInflater {
    let input: UnsafePointer<UInt8>
    let inputCount: Int
    let file: String

    /// The next input byte to load into the bit buffer (may pass the end while padding).
    var position = 0
    var bitBuffer: UInt64 = 0
    var bitCount = 0

    var output: UnsafeMutablePointer<UInt8>
    var outputCount = 0
    var outputCapacity: Int

    let literalTable: UnsafeMutablePointer<UInt16>
    let distanceTable: UnsafeMutablePointer<UInt16>
    let codeLengthTable: UnsafeMutablePointer<UInt16>
    /// Code lengths of one dynamic block: 288 literal/length then 32 distance entries.
    let lengths: UnsafeMutablePointer<UInt8>

    /// Allocates the output buffer and tables for decompressing `inputCount` bytes at `input`.
    init(input: UnsafePointer<UInt8>, inputCount: Int, file: String) {
        self.input = input
        self.inputCount = inputCount
        self.file = file
        // The last four bytes hold the last member's length modulo 2^32: a good first guess,
        // bounded by DEFLATE's best possible ratio so a forged value cannot demand huge memory.
        var guess = inputCount * 4
        if inputCount >= 18 {
            let tail = input + inputCount - 4
            let stored = Int(tail[0]) | Int(tail[1]) << 8 | Int(tail[2]) << 16 | Int(tail[3]) << 24
            guess = max(guess, min(stored, inputCount * 1032))
        }
        outputCapacity = max(guess, 4096) + 258
        output = UnsafeMutablePointer<UInt8>.allocate(capacity: outputCapacity)
        literalTable = UnsafeMutablePointer<UInt16>.allocate(capacity: 1 << 15)
        distanceTable = UnsafeMutablePointer<UInt16>.allocate(capacity: 1 << 15)
        codeLengthTable = UnsafeMutablePointer<UInt16>.allocate(capacity: 1 << 7)
        lengths = UnsafeMutablePointer<UInt8>.allocate(capacity: 320)
    }

    /// Frees every buffer; call exactly once, after copying the output out.
    func releaseBuffers() {
        output.deallocate()
        literalTable.deallocate()
        distanceTable.deallocate()
        codeLengthTable.deallocate()
        lengths.deallocate()
    }

    // MARK: Errors

    /// The error for input that ends before the stream does.
    func truncated() -> FormatError {
        FormatError(
            file: file,
            message: "truncated gzip data: the compressed stream ends early; the file is incomplete, copy or download it again"
        )
    }

    /// The error for input that breaks the format, saying what was found.
    func corrupted(_ what: String) -> FormatError {
        FormatError(
            file: file,
            message: "corrupted gzip data: \(what); the file is damaged, copy or download it again"
        )
    }

    // MARK: Members

    /// Decompresses every gzip member of the input into `output`.
    mutating func decompressMembers() throws(FormatError) {
        var memberStart = 0
        while true {
            let dataStart = try parseHeader(at: memberStart)
            position = dataStart
            bitBuffer = 0
            bitCount = 0
            let memberOutputStart = outputCount
            try inflateBlocks(memberOutputStart: memberOutputStart)

            // The trailer starts at the next byte boundary after the last block.
            let trailerStart = position - bitCount / 8
            guard trailerStart <= inputCount else { throw truncated() }
            guard trailerStart + 8 <= inputCount else { throw truncated() }
            let storedCRC = readLittleEndian32(at: trailerStart)
            let storedSize = readLittleEndian32(at: trailerStart + 4)
            let memberSize = outputCount - memberOutputStart
            let computedCRC = gzipUpdateCRC32(0, output + memberOutputStart, memberSize)
            if storedCRC != computedCRC {
                throw corrupted(
                    "CRC-32 mismatch (stored 0x\(String(storedCRC, radix: 16)), computed 0x\(String(computedCRC, radix: 16)))"
                )
            }
            if storedSize != UInt32(truncatingIfNeeded: memberSize) {
                throw corrupted("length mismatch (stored \(storedSize) bytes, decompressed \(memberSize))")
            }
            memberStart = trailerStart + 8
            if memberStart == inputCount { return }
            var onlyZeros = true
            for index in memberStart..<inputCount where input[index] != 0 {
                onlyZeros = false
                break
            }
            if onlyZeros { return }
            if input[memberStart] != 0x1f || (memberStart + 1 < inputCount && input[memberStart + 1] != 0x8b) {
                throw corrupted("unexpected bytes after the gzip member ending at byte \(memberStart)")
            }
        }
    }

    /// The little-endian 32-bit number at a byte offset (the caller checks the bounds).
    func readLittleEndian32(at offset: Int) -> UInt32 {
        UInt32(input[offset]) | UInt32(input[offset + 1]) << 8 | UInt32(input[offset + 2]) << 16 | UInt32(input[offset + 3]) << 24
    }

    /// Checks a member header and returns where its DEFLATE data starts.
    func parseHeader(at start: Int) throws(FormatError) -> Int {
        if start == 0 {
            if inputCount < 2 || input[0] != 0x1f || input[1] != 0x8b {
                throw FormatError(
                    file: file,
                    message: "not a gzip file (it does not start with the gzip magic bytes 1f 8b); pass an uncompressed file or a .gz file"
                )
            }
        }
        guard start + 10 <= inputCount else { throw truncated() }
        let method = input[start + 2]
        guard method == 8 else {
            throw corrupted("unsupported compression method \(method) in the gzip header (only 8, DEFLATE, exists)")
        }
        let flags = input[start + 3]
        guard flags & 0xe0 == 0 else { throw corrupted("reserved gzip header flags are set") }
        var offset = start + 10
        if flags & 0x04 != 0 {
            guard offset + 2 <= inputCount else { throw truncated() }
            let extraLength = Int(input[offset]) | Int(input[offset + 1]) << 8
            offset += 2 + extraLength
            guard offset <= inputCount else { throw truncated() }
        }
        for flag: UInt8 in [0x08, 0x10] where flags & flag != 0 {
            // A zero-terminated file name or comment.
            while true {
                guard offset < inputCount else { throw truncated() }
                offset += 1
                if input[offset - 1] == 0 { break }
            }
        }
        if flags & 0x02 != 0 {
            guard offset + 2 <= inputCount else { throw truncated() }
            let stored = UInt16(input[offset]) | UInt16(input[offset + 1]) << 8
            let computed = UInt16(truncatingIfNeeded: gzipUpdateCRC32(0, input + start, offset - start))
            guard stored == computed else { throw corrupted("header CRC mismatch") }
            offset += 2
        }
        return offset
    }

    // MARK: Bits

    /// Tops the bit buffer up to at least 56 bits (at most 63, so shifts stay in range).
    @inline(__always)
    mutating func refill() throws(FormatError) {
        if position + 8 <= inputCount {
            let word = UInt64(littleEndian: UnsafeRawPointer(input + position).loadUnaligned(as: UInt64.self))
            bitBuffer |= word << UInt64(bitCount)
            position += (63 - bitCount) >> 3
            bitCount |= 56
            return
        }
        while bitCount < 56 {
            if position < inputCount {
                bitBuffer |= UInt64(input[position]) << UInt64(bitCount)
            } else if position - inputCount >= 8 {
                throw truncated()
            }
            position += 1
            bitCount += 8
        }
    }

    /// Takes `count` (≤ 32) bits; the buffer must hold them.
    @inline(__always)
    mutating func take(_ count: Int) -> Int {
        let value = Int(truncatingIfNeeded: bitBuffer & ((1 << UInt64(count)) - 1))
        bitBuffer >>= UInt64(count)
        bitCount -= count
        return value
    }

    /// Decodes one symbol with a table built by `buildTable`; the buffer must hold 15 bits.
    @inline(__always)
    mutating func decode(_ table: UnsafeMutablePointer<UInt16>, mask: UInt64, what: String) throws(FormatError) -> Int {
        let entry = table[Int(truncatingIfNeeded: bitBuffer & mask)]
        let length = Int(entry & 15)
        guard length != 0 else { throw corrupted("invalid \(what) code at byte \(position - bitCount / 8)") }
        bitBuffer >>= UInt64(length)
        bitCount -= length
        return Int(entry >> 4)
    }

    // MARK: Output

    /// Makes room for at least `extra` more output bytes.
    mutating func reserve(_ extra: Int) {
        guard outputCount + extra > outputCapacity else { return }
        let newCapacity = max(outputCapacity * 2, outputCount + extra + 258)
        let newOutput = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newOutput.update(from: output, count: outputCount)
        output.deallocate()
        output = newOutput
        outputCapacity = newCapacity
    }

    // MARK: Blocks

    /// Inflates one DEFLATE stream, block after block, until the final block ends.
    mutating func inflateBlocks(memberOutputStart: Int) throws(FormatError) {
        var isFinal = false
        while !isFinal {
            try refill()
            isFinal = take(1) == 1
            switch take(2) {
            case 0:
                try copyStoredBlock()
            case 1:
                buildFixedTables()
                try inflateHuffmanBlock(literalBits: 9, distanceBits: 5, memberOutputStart: memberOutputStart)
            case 2:
                let (literalBits, distanceBits) = try readDynamicTables()
                try inflateHuffmanBlock(literalBits: literalBits, distanceBits: distanceBits, memberOutputStart: memberOutputStart)
            default:
                throw corrupted("invalid block type 3 at byte \(position - bitCount / 8)")
            }
        }
    }

    /// Copies a stored (uncompressed) block.
    mutating func copyStoredBlock() throws(FormatError) {
        // Drop the bits up to the byte boundary, then return whole unread bytes to the input.
        _ = take(bitCount & 7)
        position -= bitCount / 8
        bitBuffer = 0
        bitCount = 0
        guard position + 4 <= inputCount else { throw truncated() }
        let length = Int(input[position]) | Int(input[position + 1]) << 8
        let complement = Int(input[position + 2]) | Int(input[position + 3]) << 8
        guard length == complement ^ 0xffff else {
            throw corrupted("stored block length check failed at byte \(position)")
        }
        position += 4
        guard position + length <= inputCount else { throw truncated() }
        reserve(length)
        (output + outputCount).update(from: input + position, count: length)
        outputCount += length
        position += length
    }

    /// Builds the fixed literal/length and distance tables of RFC 1951 section 3.2.6.
    mutating func buildFixedTables() {
        for symbol in 0..<288 {
            lengths[symbol] = symbol < 144 ? 8 : symbol < 256 ? 9 : symbol < 280 ? 7 : 8
        }
        for symbol in 288..<320 { lengths[symbol] = 5 }
        // The fixed codes are complete, so building them cannot fail.
        _ = try? buildTable(lengths, count: 288, into: literalTable, kind: .literalLengths)
        _ = try? buildTable(lengths + 288, count: 32, into: distanceTable, kind: .distances)
    }

    /// Reads a dynamic block's code lengths and builds its tables.
    ///
    /// - Returns: The widths in bits of the literal/length and distance tables.
    mutating func readDynamicTables() throws(FormatError) -> (Int, Int) {
        try refill()
        let literalCount = take(5) + 257
        let distanceCount = take(5) + 1
        let codeLengthCount = take(4) + 4
        guard literalCount <= 286, distanceCount <= 30 else {
            throw corrupted("too many length or distance symbols in a dynamic block header")
        }
        for index in 0..<19 { lengths[index] = 0 }
        for index in 0..<codeLengthCount {
            if bitCount < 3 { try refill() }
            lengths[deflateCodeLengthOrder[index]] = UInt8(take(3))
        }
        let codeLengthBits = try buildTable(lengths, count: 19, into: codeLengthTable, kind: .codeLengths)
        let codeLengthMask = UInt64((1 << codeLengthBits) - 1)

        let total = literalCount + distanceCount
        var index = 0
        while index < total {
            try refill()
            let symbol = try decode(codeLengthTable, mask: codeLengthMask, what: "code length")
            if symbol < 16 {
                lengths[index] = UInt8(symbol)
                index += 1
                continue
            }
            var value: UInt8 = 0
            var repeatCount: Int
            switch symbol {
            case 16:
                guard index > 0 else { throw corrupted("a repeated code length has no previous length") }
                value = lengths[index - 1]
                repeatCount = 3 + take(2)
            case 17:
                repeatCount = 3 + take(3)
            default:
                repeatCount = 11 + take(7)
            }
            guard index + repeatCount <= total else { throw corrupted("code lengths run past the number of symbols") }
            while repeatCount > 0 {
                lengths[index] = value
                index += 1
                repeatCount -= 1
            }
        }
        guard lengths[256] != 0 else { throw corrupted("a dynamic block has no end-of-block code") }
        // Move the distance lengths to their fixed place after 288 literal/length entries.
        let distanceLengths = UnsafeMutablePointer<UInt8>.allocate(capacity: distanceCount)
        defer { distanceLengths.deallocate() }
        distanceLengths.update(from: lengths + literalCount, count: distanceCount)
        let literalBits = try buildTable(lengths, count: literalCount, into: literalTable, kind: .literalLengths)
        let distanceBits = try buildTable(distanceLengths, count: distanceCount, into: distanceTable, kind: .distances)
        return (literalBits, distanceBits)
    }

    /// Builds a flat decoding table for a canonical Huffman code.
    ///
    /// - Returns: The table width in bits (the longest code length; 0 for an empty code,
    ///   whose single entry is invalid).
    /// - Throws: `FormatError` for over-subscribed codes and for incomplete ones,
    ///   except the single one-bit code (and, for distances, no code) that DEFLATE allows.
    func buildTable(
        _ codeLengths: UnsafeMutablePointer<UInt8>, count: Int, into table: UnsafeMutablePointer<UInt16>, kind: DeflateHuffmanKind
    ) throws(FormatError) -> Int {
        var lengthCounts = (0..<16).map { _ in 0 }
        for symbol in 0..<count { lengthCounts[Int(codeLengths[symbol])] += 1 }
        var longest = 15
        while longest > 0 && lengthCounts[longest] == 0 { longest -= 1 }
        if longest == 0 {
            table[0] = 0
            if kind == .distances { return 0 }
            throw corrupted("an empty Huffman code")
        }
        var left = 1
        for length in 1...15 {
            left = (left << 1) - lengthCounts[length]
            if left < 0 { throw corrupted("over-subscribed Huffman code lengths") }
        }
        if left > 0 && (kind == .codeLengths || longest != 1) {
            throw corrupted("incomplete Huffman code lengths")
        }
        var nextCode = (0..<16).map { _ in 0 }
        var code = 0
        lengthCounts[0] = 0
        for length in 1...15 {
            code = (code + lengthCounts[length - 1]) << 1
            nextCode[length] = code
        }
        let size = 1 << longest
        table.update(repeating: 0, count: size)
        for symbol in 0..<count {
            let length = Int(codeLengths[symbol])
            if length == 0 { continue }
            let assigned = nextCode[length]
            nextCode[length] += 1
            var reversed = 0
            for bit in 0..<length where assigned & (1 << bit) != 0 {
                reversed |= 1 << (length - 1 - bit)
            }
            let entry = UInt16(symbol << 4 | length)
            var slot = reversed
            while slot < size {
                table[slot] = entry
                slot += 1 << length
            }
        }
        return longest
    }

    /// Inflates one Huffman-coded block with the current tables.
    mutating func inflateHuffmanBlock(literalBits: Int, distanceBits: Int, memberOutputStart: Int) throws(FormatError) {
        let literalMask = UInt64((1 << literalBits) - 1)
        let distanceMask = UInt64((1 << distanceBits) - 1)
        try deflateLengthCodes.withUnsafeBufferPointer { (lengthTable: UnsafeBufferPointer<UInt32>) throws(FormatError) in
            try deflateDistanceCodes.withUnsafeBufferPointer { (distanceBase: UnsafeBufferPointer<UInt32>) throws(FormatError) in
                while true {
                    // 56 bits cover the longest symbol: 15 + 5 length bits, then 15 + 13 distance bits.
                    try refill()
                    if outputCount + 258 > outputCapacity { reserve(258) }
                    let symbol = try decode(literalTable, mask: literalMask, what: "literal/length")
                    if symbol < 256 {
                        output[outputCount] = UInt8(truncatingIfNeeded: symbol)
                        outputCount += 1
                        continue
                    }
                    if symbol == 256 { return }
                    let lengthIndex = symbol - 257
                    guard lengthIndex < 29 else { throw corrupted("invalid length symbol \(symbol)") }
                    let lengthCode = lengthTable[lengthIndex]
                    let length = Int(lengthCode & 0xffff) + take(Int(lengthCode >> 16))
                    let distanceSymbol = try decode(distanceTable, mask: distanceMask, what: "distance")
                    guard distanceSymbol < 30 else { throw corrupted("invalid distance symbol \(distanceSymbol)") }
                    let distanceCode = distanceBase[distanceSymbol]
                    let distance = Int(distanceCode & 0xffff) + take(Int(distanceCode >> 16))
                    guard distance <= outputCount - memberOutputStart else {
                        throw corrupted("a match refers \(distance) bytes back, before the start of the data")
                    }
                    let destination = output + outputCount
                    let source = destination - distance
                    if distance >= length {
                        destination.update(from: source, count: length)
                    } else {
                        for offset in 0..<length { destination[offset] = source[offset] }
                    }
                    outputCount += length
                }
            }
        }
    }
}
