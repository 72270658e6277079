import Foundation
import GRDB
import SPIOImageIO

/// Says in words why reading or writing a workspace failed. SQLite reports a full disk as
/// "database or disk is full" or "disk I/O error" with the statement it ran, and Foundation as
/// `NSCocoaErrorDomain` codes; neither says what to do. Every other error keeps its own text.
package enum WorkspaceFault {
    /// The error's text, with SQLite's and Foundation's file faults translated.
    package static func describe(_ error: Error) -> String { translated(error) ?? "\(error)" }

    /// The translated text of a SQLite or Foundation file fault; nil for any other error.
    package static func translated(_ error: Error) -> String? {
        if let e = error as? DatabaseError { return describe(e) }
        if error is RowDecodingError {
            // GRDB's text dumps the whole row; keep what it could not read and the column.
            let text = "\(error)"
            let what = text.components(separatedBy: " - ").first ?? text
            let column = text.components(separatedBy: "column: \"").dropFirst().first?
                .components(separatedBy: "\"").first
            return "the run store (runs.sqlite): \(what)\(column.map { " in column \($0)" } ?? ""); this version "
                + "cannot read that row: the store was edited by hand, is damaged or was written by another version"
        }
        let domain = (error as NSError).domain
        guard domain == NSCocoaErrorDomain || domain == NSPOSIXErrorDomain else { return nil }
        return (FileFault.path(error).map { $0 + ": " } ?? "") + FileFault.reason(error)
    }

    private static func describe(_ e: DatabaseError) -> String {
        let store = "the run store (runs.sqlite)"
        switch e.resultCode {
        case .SQLITE_FULL:
            return
                "\(store): the disk is full; free space and run again (finished runs are kept, the interrupted one "
                + "resumes)"
        case .SQLITE_IOERR:
            return
                "\(store): the disk reported an error (\(e.message ?? "I/O error"); often a full disk or a removed "
                + "drive); "
                + "free space or check the drive and run again (finished runs are kept)"
        case .SQLITE_READONLY:
            return
                "\(store): the workspace is read-only; reading commands work on it, running needs a writable workspace"
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return
                "\(store): the file is damaged or not a DeepSPIO-Lab store (\(e.message ?? "")); use another "
                + "--workspace"
        case .SQLITE_CANTOPEN:
            return
                "\(store): cannot be opened (\(e.message ?? "")); check that the workspace folder exists and is "
                + "readable"
        default:
            return "\(store): \(e.message ?? "SQLite error \(e.resultCode.rawValue)")"
        }
    }
}
