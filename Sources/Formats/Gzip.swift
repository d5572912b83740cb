internal import CZlib
import Foundation

/// gzip files (RFC 1952), decompressed by zlib.
///
/// Discussion: Several gzip members concatenated in one file (as `cat a.gz b.gz`
/// produces) are decompressed and joined, and zero bytes after the last member
/// (padding some tools add) are ignored. zlib checks each member's CRC-32 and
/// length, so a damaged file is reported instead of silently producing wrong data.
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
    /// - Parameters:
    ///   - bytes: The complete contents of a `.gz` file.
    ///   - file: The path or label to name in errors.
    /// - Returns: The decompressed bytes.
    /// - Throws: `FormatError` naming the file when the data is empty, is not gzip,
    ///   is truncated, or is corrupted (zlib's reason, such as a CRC-32 mismatch).
    public static func decompress(_ bytes: [UInt8], file: String) throws(FormatError) -> [UInt8] {
        guard !bytes.isEmpty else {
            throw FormatError(file: file, message: "the file is empty, not gzip data; check that it was written completely")
        }
        guard isCompressed(bytes) else {
            throw FormatError(
                file: file,
                message: "not a gzip file (it does not start with the gzip magic bytes 1f 8b); pass an uncompressed file or a .gz file"
            )
        }
        var stream = z_stream()
        // 15 + 16: the largest window, and a gzip header and trailer around the DEFLATE data.
        guard inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw FormatError(file: file, message: "zlib could not start decompressing (out of memory?); try again")
        }
        defer { inflateEnd(&stream) }

        var output: [UInt8] = []
        // The last member's trailer stores its length modulo 2^32: a first guess for the output size, within
        // DEFLATE's largest ratio (about 1032 : 1) so that a damaged trailer cannot ask for gigabytes.
        let storedLength = bytes.suffix(4).reversed().reduce(0) { $0 << 8 | Int($1) }
        output.reserveCapacity(min(max(storedLength, bytes.count), bytes.count * 1032))
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var consumed = 0
        while true {
            let status = bytes.withUnsafeBufferPointer { input in
                chunk.withUnsafeMutableBufferPointer { room -> Int32 in
                    stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress! + consumed)
                    stream.avail_in = UInt32(input.count - consumed)
                    stream.next_out = room.baseAddress
                    stream.avail_out = UInt32(room.count)
                    let status = inflate(&stream, Z_NO_FLUSH)
                    consumed = input.count - Int(stream.avail_in)
                    return status
                }
            }
            output.append(contentsOf: chunk[0..<(chunk.count - Int(stream.avail_out))])
            switch status {
            case Z_OK:
                continue
            case Z_STREAM_END:
                // The end of one member: stop at the end of the file or of its zero padding, else go on to the next member.
                if bytes[consumed...].allSatisfy({ $0 == 0 }) { return output }
                guard isCompressed(Array(bytes[consumed...].prefix(2))) else {
                    throw corrupted("unexpected bytes after the gzip member ending at byte \(consumed)", file: file)
                }
                inflateReset(&stream)
            case Z_BUF_ERROR where consumed == bytes.count:
                throw FormatError(
                    file: file,
                    message: "truncated gzip data: the compressed stream ends early; the file is incomplete, copy or download it again"
                )
            case Z_MEM_ERROR:
                throw FormatError(file: file, message: "out of memory while decompressing; free some memory and try again")
            default:
                // zlib's reason, with its names for the trailer's two checks spelled out.
                let reason = switch stream.msg.map({ String(cString: $0) }) {
                case "incorrect data check"?: "CRC-32 mismatch"
                case "incorrect length check"?: "length mismatch"
                case let message?: message
                case nil: "zlib error \(status)"
                }
                throw corrupted("\(reason) at byte \(consumed)", file: file)
            }
        }
    }

    /// The error for input that breaks the format, saying what was found.
    private static func corrupted(_ what: String, file: String) -> FormatError {
        FormatError(file: file, message: "corrupted gzip data: \(what); the file is damaged, copy or download it again")
    }
}
