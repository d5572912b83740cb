import Foundation
import KilnPlot

/// An error in a file Kiln reads or writes.
///
/// Every problem found in a user-supplied file — a missing file, a truncated
/// download, a corrupted byte, a file of the wrong kind — is reported as a
/// thrown `FormatError` rather than a crash. The message says what is wrong and
/// what to do about it, so `description` can be shown to the user as is.
///
/// `description` is always a single line of the form `"<file>: <message>"`;
/// any line breaks in the message are replaced by spaces.
public struct FormatError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The path of the file, or a label such as `"digits.csv.gz"` when the
    /// bytes did not come from a file.
    public let file: String

    /// What is wrong and what to do, for example
    /// `"truncated: expected 400 bytes of data, found 120; save the array again"`.
    public let message: String

    /// Creates an error about one file.
    ///
    /// - Parameters:
    ///   - file: The path of the file, or a label naming the data.
    ///   - message: What is wrong and what the user should do.
    public init(file: String, message: String) {
        self.file = file
        self.message = message
    }

    /// The error as one line: `"<file>: <message>"`.
    public var description: String {
        formatsOneLine("\(file): \(message)")
    }
}

/// Replaces line breaks by spaces so that a message stays on one line.
///
/// - Parameter text: Any text.
/// - Returns: The text with every carriage return and line feed replaced by a space.
func formatsOneLine(_ text: String) -> String {
    guard text.contains(where: { $0.isNewline }) else { return text }
    return String(text.map { $0.isNewline ? " " : $0 })
}

/// The operating system's reason for a failed file operation, such as `"No such file or directory"`.
///
/// - Parameter error: An error thrown by Foundation's file APIs.
/// - Returns: The reason on one line.
func formatsReason(_ error: any Error) -> String {
    if let underlying = (error as? CocoaError)?.underlying as NSError?, underlying.domain == NSPOSIXErrorDomain,
       let text = strerror(Int32(underlying.code))
    {
        return String(cString: text)
    }
    return formatsOneLine(error.localizedDescription)
}

/// Checks that a path names a regular file (after following links) and returns its size in bytes.
///
/// Discussion: A device (`/dev/zero`), a FIFO or a socket never ends, or blocks, when read whole; a
/// folder cannot be read at all. Each is refused before the first read.
///
/// - Parameter path: The file.
/// - Returns: The file's size in bytes.
/// - Throws: `FormatError` naming the file when it does not exist, is a folder or is not a regular file.
func formatsRegularFileSize(_ path: String) throws(FormatError) -> Int {
    var status = stat()
    guard stat(path, &status) == 0 else {
        let reason = errno == ENOENT ? "no such file; check the path and that the file was created" : "cannot read the file (\(String(cString: strerror(errno)))); check its permissions"
        throw FormatError(file: path, message: reason)
    }
    switch status.st_mode & S_IFMT {
    case S_IFREG: return Int(status.st_size)
    case S_IFDIR: throw FormatError(file: path, message: "this is a folder, not a file; pass the path of a file inside it")
    default:
        throw FormatError(file: path, message: "not a regular file (a device, pipe or socket, which cannot be read to its end); pass a file saved on disk")
    }
}

/// The largest file Kiln reads whole by default: a third of the memory this process may use, since
/// reading holds the file's bytes while its values are decoded into arrays of about the same size or more.
var formatsMaximumFileBytes: Int { HostMemory.budgetBytes / 3 }

/// Reads a whole file into memory.
///
/// - Parameters:
///   - url: The file to read.
///   - maximumBytes: The largest size to read (default ``formatsMaximumFileBytes``).
///   - reason: Why that is the limit, for the error message.
/// - Returns: The file's bytes.
/// - Throws: `FormatError` naming the file when it does not exist, is a folder or another non-regular
///   file, is larger than `maximumBytes`, or cannot be read.
func formatsReadBytes(from url: URL, maximumBytes: Int? = nil, reason: String? = nil) throws(FormatError) -> [UInt8] {
    let path = url.path
    let size = try formatsRegularFileSize(path)
    let limit = maximumBytes ?? formatsMaximumFileBytes
    if size > limit {
        let budget = HostMemory.budget
        let why = reason ?? "reading it takes about three times its size in memory, and the host may use \(formatsMebibytes(budget.bytes)) (\(budget.reason))"
        throw FormatError(file: path, message: "the file is \(formatsMebibytes(size)), more than the \(formatsMebibytes(limit)) Kiln reads (\(why)); use a smaller file")
    }
    do {
        return [UInt8](try Data(contentsOf: url, options: .mappedIfSafe))
    } catch {
        throw FormatError(file: path, message: "cannot read the file (\(formatsReason(error))); check its permissions and that the disk is readable")
    }
}

/// Reads a whole regular file, for callers outside the formats (text tasks, run logs).
///
/// - Parameters:
///   - path: The file.
///   - maximumBytes: The largest size to read.
///   - reason: Why that is the limit, for the error message.
/// - Throws: `FormatError` as `formatsReadBytes(from:maximumBytes:reason:)`.
public func readRegularFile(_ path: String, maximumBytes: Int, reason: String) throws(FormatError) -> Data {
    Data(try formatsReadBytes(from: URL(fileURLWithPath: path), maximumBytes: maximumBytes, reason: reason))
}

/// Writes data atomically: a temporary file in the destination's folder, then rename.
///
/// Discussion: The bytes go to a hidden temporary file next to the destination,
/// which is flushed to disk (`FileHandle.synchronize`, an fsync) and then renamed
/// over the destination, and the folder is synced too. Readers therefore see
/// either the old file or the complete new one, never a torn file, even if the
/// process crashes midway. The temporary file is removed when anything fails.
///
/// - Parameters:
///   - data: The complete new contents of the file.
///   - url: The destination; its folder must exist.
/// - Throws: `FormatError` naming the destination when the temporary file cannot
///   be created, written, synced or renamed.
public func writeAtomically(_ data: some DataProtocol, to url: URL) throws {
    let path = url.path
    let folder = url.deletingLastPathComponent()
    let temporary = folder.appendingPathComponent(temporaryPrefix(of: url) + UUID().uuidString + ".tmp")

    /// An error saying which step failed and why.
    func failure(_ action: String, _ reason: String) -> FormatError {
        FormatError(file: path, message: "cannot \(action) (\(reason)); check that the folder exists, is writable and the disk is not full")
    }

    var step = "write a temporary file in the destination folder"
    do {
        // Bytes in contiguous memory (the [UInt8] of an encoded checkpoint) are written without a copy.
        let written: Void? = try data.withContiguousStorageIfAvailable { buffer in
            guard let base = buffer.baseAddress else { return try Data().write(to: temporary, options: .withoutOverwriting) }
            try Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: buffer.count, deallocator: .none).write(to: temporary, options: .withoutOverwriting)
        }
        if written == nil { try Data(data).write(to: temporary, options: .withoutOverwriting) }
        step = "flush the file to disk"
        let handle = try FileHandle(forUpdating: temporary)
        defer { try? handle.close() }
        try handle.synchronize()
    } catch {
        try? FileManager.default.removeItem(at: temporary)
        throw failure(step, formatsReason(error))
    }
    // Foundation has no rename that replaces its destination in one step; POSIX rename does.
    guard rename(temporary.path, path) == 0 else {
        let reason = String(cString: strerror(errno))
        try? FileManager.default.removeItem(at: temporary)
        throw failure("rename the temporary file over the destination", reason)
    }
    // Make the rename itself durable; a failure here loses nothing already written.
    if let folderHandle = FileHandle(forReadingAtPath: folder.path) {
        try? folderHandle.synchronize()
        try? folderHandle.close()
    }
}

extension LinePlot {
    /// Writes the plot as an SVG file, atomically.
    ///
    /// - Parameter url: The destination, usually ending in `.svg`.
    /// - Throws: `FormatError` naming the file when it cannot be written.
    public func write(to url: URL) throws {
        try writeAtomically(Data(svg().utf8), to: url)
    }
}

extension PlotGrid {
    /// Writes the grid as an SVG file, atomically.
    ///
    /// - Parameter url: The destination, usually ending in `.svg`.
    /// - Throws: `FormatError` naming the file when it cannot be written.
    public func write(to url: URL) throws {
        try writeAtomically(Data(svg().utf8), to: url)
    }
}

/// Checks where Kiln is asked to write before any work is done, so that a long run does not end in a
/// message about a folder that never existed.
public enum OutputPath {
    /// Checks that a file can be written at `path`: its folder exists and is writable, and the path is not
    /// a folder.
    ///
    /// - Parameters:
    ///   - path: The file to write.
    ///   - flag: The flag that gave it (`--output`), for the message.
    /// - Throws: `FormatError` naming the path, what is wrong and which flag to change.
    public static func checkFile(_ path: String, flag: String) throws(FormatError) {
        let url = URL(fileURLWithPath: path)
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), isFolder.boolValue {
            throw FormatError(file: url.path, message: "this is a folder; give \(flag) the path of a file to write")
        }
        let folder = url.deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw FormatError(file: url.path, message: "its folder \(folder) does not exist; create it or give \(flag) another path")
        }
        if let reason = writeFailure(in: folder) {
            throw FormatError(file: url.path, message: "its folder \(folder) is not writable (\(reason)); give \(flag) a path in a folder you can write to")
        }
    }

    /// Why a file cannot be created in `folder`, or nil when it can: a file is created and removed at once,
    /// since permissions alone do not tell (root passes every permission check, and /proc or a read-only
    /// mount refuse whoever writes).
    static func writeFailure(in folder: String) -> String? {
        let probe = URL(fileURLWithPath: folder).appendingPathComponent(".kiln-write-check-\(UUID().uuidString)").path
        let descriptor = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else { return String(cString: strerror(errno)) }
        close(descriptor)
        unlink(probe)
        return nil
    }

    /// Creates an output folder (and its parents) unless it exists, after checking that it can be written.
    ///
    /// - Parameters:
    ///   - url: The folder.
    ///   - flag: The flag that gave it (`--out`), for the message.
    /// - Returns: Whether the folder was created now (so that a failed run can remove it again).
    /// - Throws: `FormatError` naming the folder when it is a file, is not writable, or cannot be created.
    @discardableResult
    public static func prepareFolder(_ url: URL, flag: String) throws(FormatError) -> Bool {
        let path = url.standardizedFileURL.path
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
            guard isFolder.boolValue else { throw FormatError(file: path, message: "this is a file, not a folder; give \(flag) a folder") }
            if let reason = writeFailure(in: path) {
                throw FormatError(file: path, message: "this folder is not writable (\(reason)); give \(flag) a folder you can write to")
            }
            return false
        }
        // The nearest existing ancestor must be a folder we may write in.
        var ancestor = URL(fileURLWithPath: path).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: ancestor.path, isDirectory: &isFolder) && ancestor.path != "/" {
            ancestor = ancestor.deletingLastPathComponent()
        }
        guard isFolder.boolValue else {
            throw FormatError(file: path, message: "cannot create this folder: \(ancestor.path) is a file; give \(flag) another folder")
        }
        guard access(ancestor.path, W_OK) == 0 else {
            throw FormatError(file: path, message: "cannot create this folder: \(ancestor.path) is not writable; give \(flag) a folder you can write to")
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw FormatError(file: path, message: "cannot create this folder (\(formatsReason(error))); give \(flag) a folder you can write to")
        }
        return true
    }
}

/// The start of the names of ``writeAtomically(_:to:)``'s temporary files for `url`: `.<name>.`, then a UUID
/// and `.tmp`.
private func temporaryPrefix(of url: URL) -> String { ".\(url.lastPathComponent)." }

/// Removes the temporary files that ``writeAtomically(_:to:)`` leaves beside `url` when the process is
/// killed before it renames one (call it when no other process writes `url`). Errors are ignored: a file
/// that cannot be removed does no harm.
public func removeStaleTemporaryFiles(of url: URL) {
    let folder = url.deletingLastPathComponent()
    let prefix = temporaryPrefix(of: url)
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return }
    for name in names where name.hasPrefix(prefix) && name.hasSuffix(".tmp") {
        try? FileManager.default.removeItem(at: folder.appendingPathComponent(name))
    }
}
