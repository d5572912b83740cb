import Foundation

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

/// The text of the current `errno`, for messages about failed system calls.
///
/// - Returns: A short explanation such as `"No such file or directory"`.
private func formatsSystemErrorText() -> String {
    let code = errno
    guard let text = strerror(code) else { return "error \(code)" }
    return String(cString: text)
}

/// Reads a whole file into memory.
///
/// Discussion: The file is read with `open`/`read` straight into one array, so
/// a large file is held in memory once.
///
/// - Parameter url: The file to read.
/// - Returns: The file's bytes.
/// - Throws: `FormatError` naming the file when it does not exist, is a folder,
///   or cannot be read.
func formatsReadBytes(from url: URL) throws(FormatError) -> [UInt8] {
    let path = url.path
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
        throw FormatError(file: path, message: "no such file; check the path and that the file was created")
    }
    if isFolder.boolValue {
        throw FormatError(file: path, message: "this is a folder, not a file; pass the path of a file inside it")
    }
    let descriptor = open(path, O_RDONLY)
    guard descriptor >= 0 else {
        throw FormatError(file: path, message: "cannot open the file (\(formatsSystemErrorText())); check its permissions")
    }
    defer { close(descriptor) }

    var information = stat()
    let expectedSize = fstat(descriptor, &information) == 0 ? max(0, Int(information.st_size)) : 0
    var bytes = [UInt8](repeating: 0, count: max(expectedSize, 4096))
    var filled = 0
    while true {
        if filled == bytes.count {
            bytes.append(contentsOf: repeatElement(0, count: max(bytes.count, 4096)))
        }
        let room = bytes.count - filled
        let readCount = bytes.withUnsafeMutableBytes { buffer -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            return read(descriptor, base + filled, room)
        }
        if readCount < 0 {
            if errno == EINTR { continue }
            throw FormatError(file: path, message: "cannot read the file (\(formatsSystemErrorText())); check that the disk and file are readable")
        }
        if readCount == 0 { break }
        filled += readCount
    }
    bytes.removeSubrange(filled...)
    return bytes
}

/// Writes data atomically: a temporary file in the destination's folder, then rename.
///
/// Discussion: The bytes go to a hidden temporary file next to the destination,
/// which is flushed to disk with `fsync` and then renamed over the destination,
/// and the folder is synced too. Readers therefore see either the old file or
/// the complete new one, never a torn file, even if the process crashes midway.
/// The temporary file is removed when anything fails.
///
/// - Parameters:
///   - bytes: The complete new contents of the file.
///   - url: The destination; its folder must exist.
/// - Throws: `FormatError` naming the destination when the temporary file cannot
///   be created, written, synced or renamed.
public func writeAtomically(_ bytes: [UInt8], to url: URL) throws {
    let path = url.path
    let folder = url.deletingLastPathComponent()
    let temporaryPath = folder.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp").path

    /// An error saying which step failed and why.
    func failure(_ action: String) -> FormatError {
        FormatError(
            file: path,
            message: "cannot \(action) (\(formatsSystemErrorText())); check that the folder exists, is writable and the disk is not full"
        )
    }

    let descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC, 0o644)
    guard descriptor >= 0 else { throw failure("create a temporary file in the destination folder") }
    var succeeded = false
    defer {
        if !succeeded { unlink(temporaryPath) }
    }
    var written = 0
    var writeFailed = false
    bytes.withUnsafeBytes { buffer in
        guard let base = buffer.baseAddress else { return }
        while written < buffer.count {
            let count = write(descriptor, base + written, buffer.count - written)
            if count < 0 {
                if errno == EINTR { continue }
                writeFailed = true
                return
            }
            written += count
        }
    }
    if writeFailed {
        let error = failure("write the file")
        close(descriptor)
        throw error
    }
    if fsync(descriptor) != 0 {
        let error = failure("flush the file to disk")
        close(descriptor)
        throw error
    }
    if close(descriptor) != 0 { throw failure("close the file") }
    if rename(temporaryPath, path) != 0 { throw failure("rename the temporary file over the destination") }
    succeeded = true

    // Make the rename itself durable; a failure here loses nothing already written.
    let folderDescriptor = open(folder.path, O_RDONLY)
    if folderDescriptor >= 0 {
        _ = fsync(folderDescriptor)
        close(folderDescriptor)
    }
}
