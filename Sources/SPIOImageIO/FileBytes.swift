import Foundation
import CZlib

/// Whole-file reads (plain or gzip) and atomic writes: a file appears complete or not at all.
package enum FileBytes {
    /// Reads a file; `.gz` files are inflated with zlib. Errors name the file.
    package static func read(_ path: String, limitBytes: Int = 1 << 32) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else { throw FileError(path, "no such file") }
        if path.hasSuffix(".gz") { return try gunzip(path, limitBytes: limitBytes) }
        guard let data = FileManager.default.contents(atPath: path) else { throw FileError(path, "cannot be read") }
        return [UInt8](data)
    }

    private static func gunzip(_ path: String, limitBytes: Int) throws -> [UInt8] {
        guard let file = gzopen(path, "rb") else { throw FileError(path, "cannot be opened") }
        defer { gzclose(file) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if n < 0 { throw FileError(path, "corrupt gzip data (\(gzipError(file)))") }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<Int(n)])
            if out.count > limitBytes { throw FileError(path, "inflates to more than \(limitBytes) bytes") }
        }
        var code: Int32 = 0
        _ = gzerror(file, &code)
        // zlib reports a stream cut short as Z_BUF_ERROR at end of file.
        if code != Z_OK && code != Z_STREAM_END {
            throw FileError(path, "truncated or corrupt gzip stream (\(gzipError(file)))")
        }
        return out
    }

    /// Compresses the file at `source` into `path` with zlib (gzip format, level 9), through a
    /// temporary file renamed into place.
    package static func gzip(_ source: String, to path: String) throws {
        guard let input = FileHandle(forReadingAtPath: source) else { throw FileError(source, "cannot be read") }
        defer { try? input.close() }
        try PartialPath.write(path) { partial in
            guard let file = gzopen(partial, "wb9") else { throw FileError(path, "cannot be opened for writing") }
            var open = true
            defer { if open { gzclose(file) } }
            while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
                let written = chunk.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
                guard written == Int32(chunk.count) else {
                    throw FileError(path, "cannot be written (\(gzipError(file)))")
                }
            }
            open = false
            guard gzclose(file) == Z_OK else { throw FileError(path, "cannot be written (closing the gzip stream)") }
        }
    }

    private static func gzipError(_ file: gzFile) -> String {
        var code: Int32 = 0
        return gzerror(file, &code).map { String(cString: $0) } ?? "zlib error \(code)"
    }

    /// Writes `bytes` to a temporary file beside `path`, then renames it into place.
    package static func writeAtomically(_ bytes: some Collection<UInt8>, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        do {
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(bytes).write(to: url, options: .atomic)
        } catch {
            throw FileError(path, "cannot be written: \(FileFault.reason(error))")
        }
    }
}

/// The operating system's words for a failed file operation ("No space left on device",
/// "Read-only file system"), where Foundation on Linux gives `NSCocoaErrorDomain` codes or
/// "The operation could not be completed".
package enum FileFault {
    package static func reason(_ error: Error) -> String {
        let ns = error as NSError
        // "File exists" from making a folder where a file is: say which is in the way.
        let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError
        let exists =
            (ns.domain == NSPOSIXErrorDomain && ns.code == Int(EEXIST))
            || (underlying?.domain == NSPOSIXErrorDomain && underlying?.code == Int(EEXIST))
            || (ns.domain == NSCocoaErrorDomain && ns.code == CocoaError.fileWriteFileExists.rawValue)
        var isFolder: ObjCBool = false
        if exists, let p = path(error), FileManager.default.fileExists(atPath: p, isDirectory: &isFolder),
            !isFolder.boolValue
        {
            return "is a file, where a folder is needed"
        }
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        if let u = ns.userInfo[NSUnderlyingErrorKey] as? NSError, u.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(u.code)))
        }
        guard ns.domain == NSCocoaErrorDomain else { return "\(error)" }
        switch CocoaError.Code(rawValue: ns.code) {
        case .fileWriteOutOfSpace: return String(cString: strerror(ENOSPC))
        case .fileWriteVolumeReadOnly: return String(cString: strerror(EROFS))
        case .fileWriteNoPermission, .fileReadNoPermission: return String(cString: strerror(EACCES))
        case .fileNoSuchFile, .fileReadNoSuchFile: return String(cString: strerror(ENOENT))
        case .fileWriteFileExists: return String(cString: strerror(EEXIST))
        default: return path(error).flatMap(obstacle) ?? ns.localizedDescription
        }
    }

    /// Why a path cannot be made, where Foundation gives no cause: a file where a folder is needed
    /// on its way, or a folder this process may not write.
    private static func obstacle(_ path: String) -> String? {
        var ancestor = (path as NSString).deletingLastPathComponent
        while !ancestor.isEmpty, ancestor != "/" {
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: ancestor, isDirectory: &isFolder) {
                if !isFolder.boolValue { return "\(ancestor) is a file, where a folder is needed" }
                if access(ancestor, W_OK) != 0 { return "\(ancestor): " + String(cString: strerror(errno)) }
                return nil
            }
            ancestor = (ancestor as NSString).deletingLastPathComponent
        }
        return nil
    }

    /// The file the error names, if any.
    package static func path(_ error: Error) -> String? {
        let ns = error as NSError
        return (ns.userInfo[NSFilePathErrorKey] as? String) ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
    }
}
