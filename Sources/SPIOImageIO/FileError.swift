/// A file that could not be read or written, with the path and what was wrong.
package struct FileError: Error, CustomStringConvertible, Equatable {
    package let path: String
    package let reason: String
    package init(_ path: String, _ reason: String) { self.path = path; self.reason = reason }
    package var description: String { "\(path): \(reason)" }
}
