import Foundation

/// The files a command wrote into a folder it may share with the user (a report folder, an
/// `spio predict --out` folder), listed in a hidden manifest beside them with their owner (the
/// study, the model). A later run replaces only files its manifest lists, for the same owner, and
/// refuses before writing anything when a file it would write is someone else's.
///
/// The manifest is text: a first line `# owner: OWNER`, then one file name per line. A manifest
/// without the owner line (written before owners were recorded) belongs to any owner.
package struct OutputManifest {
    package let directory: String
    /// The manifest's file name inside `directory`, e.g. `.report-files`.
    package let name: String
    /// Who writes this time, e.g. `study quickstart`.
    package let owner: String
    /// The names the folder's manifest lists, and its owner (nil: none recorded, or no manifest).
    package private(set) var listed: [String] = []
    package private(set) var listedOwner: String?

    package init(directory: String, name: String, owner: String) {
        self.directory = directory; self.name = name; self.owner = owner
        let text = (try? String(contentsOfFile: Self.join(directory, name), encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n").map(String.init) {
            if line.hasPrefix("# owner: ") {
                listedOwner = String(line.dropFirst("# owner: ".count))
            } else if !line.hasPrefix("#"), !line.isEmpty, !line.contains("/"), line != ".." {
                listed.append(line)
            }
        }
    }

    /// Refuses (nothing written yet) when the folder's manifest has another owner, or when one of
    /// `names` exists in the folder and the manifest does not list it.
    package func checkWritable(_ names: [String]) throws {
        if let listedOwner, listedOwner != owner {
            throw FileError(
                directory,
                "holds the files of \(listedOwner) (listed in its \(name)), not of \(owner); choose another output "
                    + "folder (nothing was written)")
        }
        let mine = Set(listed)
        let foreign = names.filter { !mine.contains($0) && FileManager.default.fileExists(atPath: path($0)) }
        guard foreign.isEmpty else {
            let shown = foreign.prefix(3).joined(separator: ", ") + (foreign.count > 3 ? ", ..." : "")
            throw FileError(
                directory,
                "already holds \(shown), which spio did not write here; choose another output folder or move "
                    + "\(foreign.count == 1 ? "it" : "them") (nothing was written)")
        }
    }

    /// Lists `names` as this owner's. With `replacing`, the files listed before and not now are
    /// removed (a report's panel of a run no longer in the study); otherwise the lists are joined
    /// (predictions of several inputs into one folder).
    package func record(_ names: [String], replacing: Bool) throws {
        let now = Set(names)
        if replacing {
            for old in listed where !now.contains(old) { try? FileManager.default.removeItem(atPath: path(old)) }
        }
        var all = replacing ? [] : listed.filter { !now.contains($0) }
        all += names
        let text = "# owner: \(owner)\n" + all.map { $0 + "\n" }.joined()
        try text.write(toFile: path(name), atomically: true, encoding: .utf8)
    }

    package func path(_ file: String) -> String { Self.join(directory, file) }

    static func join(_ a: String, _ b: String) -> String { (a as NSString).appendingPathComponent(b) }
}
