import Foundation

/// Finds Kiln's run-time folders: `Kernels/` (the OpenCL C sources) and `data/` (built-in datasets).
///
/// Folders are searched in this order, and the first one that exists is used:
/// 1. the environment variable (`KILN_KERNELS` or `KILN_DATA`), when set;
/// 2. next to the executable: `<dir>/Kernels`, then `<dir>/../share/kiln/Kernels`;
/// 3. the source tree this library was built from.
///
/// When the environment variable is set, it is the only place searched: a folder the user names
/// explicitly is never silently replaced by another one.
public struct ResourceLocator: Sendable {
    /// The kinds of folders Kiln reads at run time.
    public enum Kind: String, Sendable {
        case kernels = "Kernels"
        case data = "data"

        /// The environment variable that overrides the search.
        public var environmentVariable: String {
            switch self {
            case .kernels: "KILN_KERNELS"
            case .data: "KILN_DATA"
            }
        }
    }

    public let kind: Kind
    private let environment: [String: String]
    private let executableDirectory: URL?
    private let sourceTreeRoot: URL?

    /// Creates a locator for one kind of folder.
    ///
    /// - Parameters:
    ///   - kind: which folder to find.
    ///   - environment: the environment to read the override from (the process's by default).
    ///   - executableDirectory: the folder of the running executable (found from the process by default).
    ///   - sourceTreeRoot: the repository root the library was built from (found from `#filePath` by default).
    public init(
        _ kind: Kind,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        executableDirectory: URL? = ResourceLocator.runningExecutableDirectory(),
        sourceTreeRoot: URL? = ResourceLocator.buildSourceTreeRoot()
    ) {
        self.kind = kind
        self.environment = environment
        self.executableDirectory = executableDirectory
        self.sourceTreeRoot = sourceTreeRoot
    }

    /// Every folder this locator would look in, in order.
    public var candidates: [URL] {
        if let override = environment[kind.environmentVariable], !override.isEmpty {
            return [URL(fileURLWithPath: override, isDirectory: true)]
        }
        var folders: [URL] = []
        if let executableDirectory {
            folders.append(executableDirectory.appendingPathComponent(kind.rawValue, isDirectory: true))
            folders.append(
                executableDirectory.appendingPathComponent("../share/kiln/\(kind.rawValue)", isDirectory: true)
                    .standardizedFileURL)
        }
        if let sourceTreeRoot {
            folders.append(sourceTreeRoot.appendingPathComponent(kind.rawValue, isDirectory: true))
        }
        return folders
    }

    /// The first candidate folder that exists.
    ///
    /// - Throws: ``ResourceError/folderNotFound(kind:searched:)`` listing every folder searched.
    public func folder() throws(ResourceError) -> URL {
        let searched = candidates
        for folder in searched where ResourceLocator.isDirectory(folder) {
            return folder
        }
        throw .folderNotFound(kind: kind, searched: searched.map(\.path))
    }

    /// The path of a file inside the folder, which must exist.
    ///
    /// - Throws: ``ResourceError/fileNotFound(name:folder:searched:)`` when the folder lacks the file.
    public func file(named name: String) throws(ResourceError) -> URL {
        let folder = try folder()
        let url = folder.appendingPathComponent(name)
        // A device or FIFO in its place would never finish reading: only a regular file counts.
        guard FileManager.default.isReadableFile(atPath: url.path), ResourceLocator.isRegularFile(url.path) else {
            throw .fileNotFound(name: name, folder: folder.path, searched: candidates.map(\.path))
        }
        return url
    }

    /// The folder holding the running executable, found through `/proc/self/exe` or `argv[0]`.
    public static func runningExecutableDirectory() -> URL? {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            return URL(fileURLWithPath: path).deletingLastPathComponent()
        }
        return Bundle.main.executableURL?.resolvingSymlinksInPath().deletingLastPathComponent()
    }

    /// The repository root this file was compiled from (`Sources/Kernels/ResourceLocator.swift` → root).
    public static func buildSourceTreeRoot(filePath: String = #filePath) -> URL? {
        let file = URL(fileURLWithPath: filePath)
        let root = file.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return isDirectory(root) ? root : nil
    }

    /// Whether a path names a regular file, after following links.
    package static func isRegularFile(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG
    }

    private static func isDirectory(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}

/// A run-time folder or file that could not be found.
public enum ResourceError: Error, CustomStringConvertible, Equatable, Sendable {
    case folderNotFound(kind: ResourceLocator.Kind, searched: [String])
    case fileNotFound(name: String, folder: String, searched: [String])

    public var description: String {
        switch self {
        case let .folderNotFound(kind, searched):
            "no \(kind.rawValue)/ folder found; searched \(searched.joined(separator: ", ")); "
                + "set \(kind.environmentVariable) to the folder that holds Kiln's \(kind.rawValue)"
        case let .fileNotFound(name, folder, searched):
            "\(name) is missing from \(folder) (searched \(searched.joined(separator: ", "))); "
                + "restore the file or point the environment variable at a complete folder"
        }
    }
}
