import Foundation

/// Files and folders written under a temporary `<name>.partial-<pid>` name and renamed into place
/// when complete. A process killed in between leaves one behind; once that process is gone it is
/// garbage, removed by the next runner or report in the same folder. Names written on a shared
/// file system carry the host too, `<name>.partial-<pid>@<host>`: a process on another machine (a
/// cluster task) cannot be checked from here, so its files are left alone.
package enum StalePartialFiles {
    /// The temporary name of `path` for this process on this host.
    package static func name(for path: String) -> String { path + ".partial-\(getpid())@\(RunStore.hostName)" }

    /// Removes every `*.partial-<pid>` entry of `folder` whose process no longer exists on this
    /// host; returns the names removed. A missing folder has none.
    @discardableResult
    package static func remove(in folder: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        var removed: [String] = []
        for name in names {
            guard let r = name.range(of: ".partial-", options: .backwards) else { continue }
            let owner = name[r.upperBound...].split(separator: "@", maxSplits: 1)
            guard let pid = owner.first.flatMap({ Int($0) }), owner.count == 1 || owner[1] == RunStore.hostName,
                !RunStore.processIsAlive(pid)
            else { continue }
            let path = (folder as NSString).appendingPathComponent(name)
            if (try? FileManager.default.removeItem(atPath: path)) != nil { removed.append(name) }
        }
        return removed
    }
}
