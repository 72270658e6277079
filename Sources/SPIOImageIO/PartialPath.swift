import Foundation

/// Files and folders are written under a temporary name beside their final one and renamed into
/// place when complete, so a reader sees all of one or none of it: the one idiom for datasets,
/// shards, checkpoints, figures, reports and released models. The temporary name is
/// `<path>.partial-<pid>@<host>`. A process killed in between leaves it behind; `removeStale`
/// deletes those whose process is gone from this host, at any depth. Another host's (a cluster
/// task's, on a shared file system) cannot be checked from here and stays.
package enum PartialPath {
    /// The temporary name of `path` for this process on this host.
    package static func of(_ path: String) -> String { path + ".partial-\(getpid())@\(hostName)" }

    /// Whether a file or folder name is a temporary one (of any process, any naming so far).
    package static func isPartial(_ name: String) -> Bool { name.contains(".partial") }

    /// Writes `path` through `body`, which is given the temporary path to write to, then moves the
    /// result into place, replacing what `path` held (a folder is removed first: rename(2) replaces
    /// files and empty folders only). A failing `body` leaves `path` as it was and no temporary.
    package static func write(_ path: String, _ body: (String) throws -> Void) throws {
        let fm = FileManager.default
        let partial = of(path)
        try? fm.removeItem(atPath: partial)
        do {
            try fm.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent.isEmpty
                    ? "." : (path as NSString).deletingLastPathComponent,
                withIntermediateDirectories: true)
            try body(partial)
        } catch {
            try? fm.removeItem(atPath: partial)
            throw error
        }
        var isFolder: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue { try? fm.removeItem(atPath: path) }
        guard rename(partial, path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? fm.removeItem(atPath: partial)
            throw FileError(path, "cannot be moved into place: \(reason)")
        }
    }

    /// Removes every temporary `*.partial-<pid>[@<host>]` entry under `folder`, down to `depth`
    /// levels, whose process no longer exists on this host; returns their paths. A missing folder
    /// has none.
    @discardableResult
    package static func removeStale(under folder: String, depth: Int = 4) -> [String] {
        guard depth > 0, let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        var removed: [String] = []
        for name in names {
            let path = (folder as NSString).appendingPathComponent(name)
            if let r = name.range(of: ".partial-", options: .backwards) {
                let owner = name[r.upperBound...].split(separator: "@", maxSplits: 1)
                guard let pid = owner.first.flatMap({ Int($0.prefix { $0.isNumber }) }),
                    owner.count == 1 || owner[1].hasPrefix(hostName), !processIsAlive(pid)
                else { continue }
                if (try? FileManager.default.removeItem(atPath: path)) != nil { removed.append(path) }
                continue
            }
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
                removed += removeStale(under: path, depth: depth - 1)
            }
        }
        return removed
    }

    /// This machine's name, as run records and temporary names carry it.
    package static var hostName: String { ProcessInfo.processInfo.hostName }

    /// Whether process `pid` exists on this host.
    package static func processIsAlive(_ pid: Int) -> Bool { pid > 0 && (kill(pid_t(pid), 0) == 0 || errno == EPERM) }
}
