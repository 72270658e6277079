import Foundation

/// Files and folders written under a temporary `<name>.partial-<pid>` name and renamed into place
/// when complete. A process killed in between leaves one behind; once that process is gone it is
/// garbage, removed by the next runner or report in the same folder.
package enum StalePartialFiles {
    /// Removes every `*.partial-<pid>` entry of `folder` whose process no longer exists on this
    /// host; returns the names removed. A missing folder has none.
    @discardableResult
    package static func remove(in folder: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        var removed: [String] = []
        for name in names {
            guard let r = name.range(of: ".partial-", options: .backwards), let pid = Int(name[r.upperBound...]),
                !RunStore.processIsAlive(pid)
            else { continue }
            let path = (folder as NSString).appendingPathComponent(name)
            if (try? FileManager.default.removeItem(atPath: path)) != nil { removed.append(name) }
        }
        return removed
    }
}
