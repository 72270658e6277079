import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension Subprocess {
    /// How a streamed program ended.
    package struct Ending: Sendable {
        /// Its exit status, or 128 + the signal that ended it.
        package let status: Int32
        /// The last lines it wrote to standard error, for messages.
        package let errorTail: [String]
    }

    /// Runs `program` and hands each line of its standard output to `line` and each line of its
    /// standard error to `errorLine` as they come, on the calling thread. `stop` is asked at least
    /// every 0.2 s; the first time it answers true the program gets SIGTERM (once), and is expected
    /// to finish what it is doing and exit. When `line` throws, the program is killed and the error
    /// rethrown. `environment` adds to (or replaces entries of) this process's environment.
    package static func stream(
        _ program: String, _ arguments: [String], environment: [String: String] = [:],
        stop: () -> Bool = { false }, errorLine: (String) -> Void = { _ in }, line: (String) throws -> Void
    ) throws -> Ending {
        let (p, out, err) = try launch(program, arguments, environment: environment)
        var tail: [String] = []
        var pending = [Data(), Data()]
        var fds = [
            pollfd(fd: out.fileHandleForReading.fileDescriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: err.fileHandleForReading.fileDescriptor, events: Int16(POLLIN), revents: 0)
        ]
        var open = [true, true]
        var signalled = false
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        func deliver(_ k: Int, _ text: String) throws {
            if k == 0 {
                try line(text)
            } else {
                errorLine(text)
                tail.append(text)
                if tail.count > 40 { tail.removeFirst() }
            }
        }
        do {
            while open[0] || open[1] {
                for k in 0..<2 { fds[k].fd = open[k] ? fds[k].fd : -1; fds[k].revents = 0 }
                let ready = poll(&fds, 2, 200)
                if !signalled && stop() {
                    signalled = true
                    kill(p.processIdentifier, SIGTERM)
                }
                guard ready > 0 else { continue }
                for k in 0..<2 where open[k] && fds[k].revents != 0 {
                    let n = read(fds[k].fd, &buffer, buffer.count)
                    if n <= 0 {
                        open[k] = false
                        if !pending[k].isEmpty { try deliver(k, String(decoding: pending[k], as: UTF8.self)) }
                        continue
                    }
                    pending[k].append(contentsOf: buffer[0..<n])
                    while let newline = pending[k].firstIndex(of: 10) {
                        let text = String(decoding: pending[k][pending[k].startIndex..<newline], as: UTF8.self)
                        pending[k] = Data(pending[k][(newline + 1)...])
                        try deliver(k, text)
                    }
                }
            }
        } catch {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            throw error
        }
        p.waitUntilExit()
        let status = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
        return Ending(status: status, errorTail: tail)
    }
}
