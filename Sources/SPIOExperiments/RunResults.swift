import Foundation

/// Finished runs that other processes computed without writing this workspace's store: the result
/// stores that cluster tasks hand back (and, for a task, a snapshot of the workspace's store). A
/// runner with `results` set records a claimed run from here instead of computing it, except the
/// one unit it was asked to compute (docs/cluster.md).
package final class RunResults {
    /// Who computed them, for messages (`slurm task`).
    package let origin: String
    /// The stores, searched in order.
    package let stores: [RunStore]
    /// The one unit this process computes itself (a cluster task's); nil: none.
    package let computed: Runner.WorkUnit?
    /// The error for a unit found nowhere (a failed or killed task), given kind, hash and run name.
    package let missing: (RunKind, String, String) -> Error

    package init(
        origin: String, stores: [RunStore], computed: Runner.WorkUnit? = nil,
        missing: @escaping (RunKind, String, String) -> Error
    ) {
        self.origin = origin; self.stores = stores; self.computed = computed; self.missing = missing
    }

    /// Opens every `*.sqlite` file of `folder` (result stores of a workspace at `workspace`),
    /// oldest name first; files being written (`.partial-*`) are not results yet.
    package static func stores(in folder: String, workspace: String) throws -> [RunStore] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return try names.filter { $0.hasSuffix(".sqlite") }.sorted().map {
            try RunStore(path: (folder as NSString).appendingPathComponent($0), access: .snapshot, workspace: workspace)
        }
    }

    /// Whether this process computes the unit itself.
    func computes(_ kind: RunKind, _ hash: String) -> Bool { computed?.kind == kind && computed?.hash == hash }

    /// A finished run of this kind and hash whose folder exists, and the store that holds it.
    func finished(kind: RunKind, hash: String) throws -> (RunStore, RunStore.Run)? {
        for store in stores {
            if let run = try store.finished(kind: kind, hash: hash) { return (store, run) }
        }
        return nil
    }
}
