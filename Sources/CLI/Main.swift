import ArgumentParser
import Foundation

/// Runs `kiln`: parse errors and `--help` go through ArgumentParser, except a value outside a flag's
/// closed set (`--optimizer lion`), which is a user error like every other: printed as one line,
/// `error: …` (naming the valid values), with exit status 1 and no stack trace.
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
            guard String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") else { fail(String(describing: error)) }
            // ArgumentParser's message for an enum flag's bad value: "The value 'lion' is invalid for
            // '--optimizer <optimizer>'. Please provide one of 'sgd', 'adam', …".
            let message = KilnCommand.message(for: error)
            if message.hasPrefix("The value '") && message.contains("Please provide one of") { fail(message) }
            KilnCommand.exit(withError: error)
        }
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
