import ArgumentParser
import Foundation
import Kiln

/// Runs `kiln`: `--help` goes through ArgumentParser; every other problem with what the user gave (a parse
/// error such as an unknown flag or a value outside a flag's closed set, an environment variable, a value
/// found invalid while running) is printed as one line, `error: …`, with exit status 1 and no stack trace.
@main
enum KilnMain {
    static func main() {
        do {
            var command = try KilnCommand.parseAsRoot()
            try KilnEnvironment.validate()
            // Under mpirun, only train and sweep share work between ranks; every other command would run
            // once per rank and write the same files at the same time.
            if let size = Launch.worldSize(), size != 1, !(command is TrainCommand || command is SweepCommand) {
                throw CommandError("only kiln train and kiln sweep run under mpirun (\(size == 0 ? "a launcher" : "\(size) ranks") started this one); run it without mpirun")
            }
            try command.run()
        } catch let error as CleanExit {
            KilnCommand.exit(withError: error)
        } catch let error as ExitCode {
            KilnCommand.exit(withError: error)
        } catch {
            guard error is ValidationError || String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") else {
                // Under mpirun, an error every rank meets alike is printed by rank 0 alone.
                if !DistributedJob.printsError(error) { Foundation.exit(1) }
                fail(DistributedJob.prefix(String(describing: error)) + String(describing: error))
            }
            // `--help` and `--version` arrive as errors that exit 0.
            if KilnCommand.exitCode(for: error) == .success { KilnCommand.exit(withError: error) }
            // ArgumentParser's message is its first line ("Unknown option '--bogus'. Did you mean '--out'?");
            // its usage and help lines follow, which `--help` shows anyway.
            var message = KilnCommand.message(for: error).split(whereSeparator: \.isNewline).first.map(String.init) ?? "\(error)"
            if message.hasPrefix("Error: ") { message.removeFirst(7) }
            if let last = message.last, !".?!".contains(last) { message += "." }
            fail("\(message) Run '\(helpCommand)' to list the flags.")
        }
    }

    /// `kiln <subcommand> --help` for the subcommand on the command line, else `kiln --help`.
    static var helpCommand: String {
        let names = KilnCommand.configuration.subcommands.compactMap { $0.configuration.commandName }
        let arguments = CommandLine.arguments.dropFirst()
        if let first = arguments.first, names.contains(first) { return "kiln \(first) --help" }
        return "kiln --help"
    }

    /// Prints `error: <message>` on one line and exits with status 1.
    static func fail(_ message: String) -> Never {
        let line = message.split(whereSeparator: \.isNewline).joined(separator: " ")
        FileHandle.standardError.write(Data("error: \(line)\n".utf8))
        Foundation.exit(1)
    }
}

/// A problem with what the user asked for, found while running a command; printed as one line.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The environment variables Kiln reads, checked before a command runs (`KILN_DEVICE` where a device is
/// resolved, see ``resolveDevice(_:)``; `KILN_KERNELS` and `KILN_DATA` where their files are read, with
/// an error that lists the places searched).
enum KilnEnvironment {
    /// The most threads `KILN_CPU_THREADS` may ask for: more than that splits every loop into slivers
    /// (the CPU backend cuts each loop into 4 chunks per thread) and is beyond any machine Kiln runs on.
    static let maximumThreads = 1024

    static func validate(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        if let text = environment["KILN_CPU_THREADS"], !text.isEmpty {
            guard let threads = Int(text.trimmingCharacters(in: .whitespaces)), (1...maximumThreads).contains(threads) else {
                throw CommandError("KILN_CPU_THREADS must be a number of threads from 1 to \(maximumThreads), got '\(text.prefix(40))'; unset it to use every core")
            }
        }
        if let text = environment["KILN_CPU_VECTORS"], !text.isEmpty, text != "portable", text != "avx2" {
            throw CommandError("KILN_CPU_VECTORS must be 'portable' (the portable C loops), 'avx2' (stop at AVX2 + FMA) or unset (AVX2 + FMA, and AVX-512 where it pays, when the processor has them), got '\(text.prefix(40))'")
        }
        for (name, meaning) in [("KILN_MPI_TIMEOUT", "seconds a rank waits for the others"), ("KILN_MPI_BUCKET_MB", "MiB of gradients per allreduce bucket")] {
            if let text = environment[name], !text.isEmpty, !(Double(text.trimmingCharacters(in: .whitespaces)).map { $0 > 0 && $0.isFinite } ?? false) {
                throw CommandError("\(name) must be a positive number (\(meaning)), got '\(text.prefix(40))'; unset it for the default")
            }
        }
        if let path = environment["KILN_CACHE_DIR"], !path.isEmpty {
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue {
                throw CommandError("KILN_CACHE_DIR=\(path) is a file, not a folder; set it to a folder for the program cache, or unset it (~/.cache/kiln)")
            }
        }
    }
}

/// The device a `--device` flag (or, without one, `KILN_DEVICE`) names; an unknown name from the
/// environment says that it came from there.
func resolveDevice(_ flag: String?) throws -> DeviceDescription {
    do {
        return try Devices.resolve(flag)
    } catch {
        let fromEnvironment = flag == nil && !(ProcessInfo.processInfo.environment["KILN_DEVICE"] ?? "").isEmpty
        throw CommandError(fromEnvironment ? "KILN_DEVICE: \(error.description)" : error.description)
    }
}

/// A backend for the device a `--device` flag (or `KILN_DEVICE`) names.
func makeBackend(_ flag: String?) throws -> any Backend {
    try Devices.makeBackend(for: resolveDevice(flag))
}
