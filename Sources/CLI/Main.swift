import ArgumentParser
import Foundation

/// Runs `kiln`: parse errors and `--help` go through ArgumentParser; every other error is printed as one
/// line, `error: …`, with exit status 1 and no stack trace.
@main
enum KilnMain {
    static func main() {
        do {
            var command = try KilnCommand.parseAsRoot()
            try command.run()
        } catch let error as CleanExit {
            KilnCommand.exit(withError: error)
        } catch let error as ExitCode {
            KilnCommand.exit(withError: error)
        } catch let error as ValidationError {
            KilnCommand.exit(withError: error)
        } catch {
            if String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
                KilnCommand.exit(withError: error)
            }
            let message = String(describing: error).split(whereSeparator: \.isNewline).joined(separator: " ")
            FileHandle.standardError.write(Data("error: \(message)\n".utf8))
            Foundation.exit(1)
        }
    }
}

/// A problem with what the user asked for, found while running a command; printed as one line.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
