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

/// Reads a whole file into memory.
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
    do {
        return [UInt8](try Data(contentsOf: url, options: .mappedIfSafe))
    } catch {
        throw FormatError(file: path, message: "cannot read the file (\(formatsReason(error))); check its permissions and that the disk is readable")
    }
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
        try Data(data).write(to: temporary, options: .withoutOverwriting)
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
