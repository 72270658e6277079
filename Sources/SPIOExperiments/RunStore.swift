import Foundation
import SPIOKernels
import GRDB
import SPIODigest
import SPIOImageIO
import SPIOTensor

/// The SQLite run store (GRDB, WAL mode): runs, their parameters, metrics per step, artifacts with
/// SHA-256, and the environment of every run. Plain tables any SQLite client reads; the schema is
/// documented in docs/run-store.md. Safe for several processes at once (WAL + busy timeout).
package final class RunStore {
    package let path: String
    /// A `DatabasePool` when opened for writing or reading a live store; a `DatabaseQueue` on an
    /// immutable file when the store lies in a folder this process cannot write.
    package let db: any DatabaseWriter
    /// The workspace: the folder of the store unless given. Run directories and artifact paths
    /// inside it are stored relative to it (since v5), so a workspace can be moved or used from any
    /// directory, and a cluster task's private store (elsewhere) records paths as the workspace's.
    package let workspace: String

    /// A run: one dataset simulation, one training, or one evaluation.
    package struct Run: Codable, FetchableRecord, MutablePersistableRecord, Sendable {
        package static let databaseTableName = "runs"
        package var id: Int64?
        package var study: String
        package var name: String
        package var kind: RunKind
        package var configHash: String
        package var configJSON: String
        package var status: RunStatus
        package var error: String?
        package var pid: Int?
        package var host: String
        package var createdAt: String
        package var startedAt: String?
        package var finishedAt: String?
        package var seconds: Double?
        /// Where the run's files live (dataset, checkpoints, predictions).
        package var directory: String
        /// The run this one was made from (a training's dataset, an evaluation's training).
        package var parentID: Int64?

        enum CodingKeys: String, CodingKey {
            case id, study, name, kind, configHash = "config_hash", configJSON = "config_json", status, error, pid, host
            case createdAt = "created_at", startedAt = "started_at", finishedAt = "finished_at", seconds, directory,
                parentID = "parent_id"
        }
        package mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
    }

    package struct Metric: Codable, FetchableRecord, Sendable, Equatable {
        package var runID: Int64, key: MetricKey, step: Int, value: Double
        enum CodingKeys: String, CodingKey { case runID = "run_id", key, step, value }
    }

    package struct Artifact: Codable, FetchableRecord, Sendable {
        package var runID: Int64, name: String, path: String, sha256: String, bytes: Int
        enum CodingKeys: String, CodingKey { case runID = "run_id", name, path, sha256, bytes }
    }

    /// How a command uses the store: reading commands (`spio runs`, `show`, `compare`, `report`,
    /// `verify`) open it read-only, so they work on a workspace they may not write (an archive, a
    /// colleague's folder, a read-only mount) and never create or migrate anything. `snapshot`
    /// reads a file no process writes any more (a cluster task's result, a copy made by
    /// `writeSnapshot`) without any locking, so it is safe on a network file system.
    package enum Access: Sendable { case readWrite, readOnly, snapshot }

    /// Opens the store; `.readWrite` creates and migrates it if needed. `workspace` is the folder
    /// that run paths are relative to (default: the store's folder).
    package init(path: String, access: Access = .readWrite, workspace: String? = nil) throws {
        self.path = path
        self.workspace = Self.absolute(workspace ?? (Self.absolute(path) as NSString).deletingLastPathComponent)
        // Held until the migrations below have run (writers only).
        var lock: Int32 = -1
        defer { if lock >= 0 { flock(lock, LOCK_UN); close(lock) } }
        switch access {
        case .readWrite: (db, lock) = try Self.openForWriting(path)
        case .readOnly: db = try Self.openForReading(path)
        case .snapshot:
            try Self.checkKinds(path)
            guard FileManager.default.fileExists(atPath: path) else { throw RunStoreError.missing(path) }
            db = try Self.openImmutable(path)
        }
        // A store written by a newer version has migrations this one does not know: opening it
        // would misread its tables, and migrating is impossible.
        let applied = try db.read { try Self.migrator.appliedIdentifiers($0) }
        let known = Self.migrator.migrations
        if let unknown = applied.subtracting(known).sorted().first {
            throw RunStoreError.newerSchema(path, unknown, known.last ?? "")
        }
        switch access {
        case .readWrite: try Self.migrator.migrate(db)
        case .readOnly, .snapshot:
            if applied.isEmpty {
                try Self.checkNotForeign(path)
                throw RunStoreError.empty(path)
            }
            if let missing = known.first(where: { !applied.contains($0) }) {
                throw RunStoreError.olderSchema(path, missing)
            }
        }
    }

    /// A workspace path that is a file, or a store path that is a folder.
    private static func checkKinds(_ path: String) throws {
        var isFolder: ObjCBool = false
        let folder = (path as NSString).deletingLastPathComponent
        if FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), !isFolder.boolValue {
            throw RunStoreError.notAFolder(folder)
        }
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            throw RunStoreError.storeIsAFolder(path)
        }
    }

    /// The store and the advisory lock that serialises opening and migrating; the caller releases
    /// the lock once the migrations have run.
    private static func openForWriting(_ path: String) throws -> (any DatabaseWriter, Int32) {
        try checkKinds(path)
        try checkNotForeign(path)
        let folder = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw RunStoreError.cannotCreate(folder, WorkspaceFault.describe(error))
        }
        var config = Configuration()
        config.busyMode = .timeout(30)
        // Switching a new file to WAL and checking which migrations ran are not protected by
        // SQLite's busy timeout; two processes opening a fresh store at once would race
        // ("database is locked", "duplicate column"). An advisory lock beside the file
        // serialises opening and migrating; afterwards SQLite's own locking takes over.
        let lock = open(path + ".lock", O_RDWR | O_CREAT, 0o644)
        guard lock >= 0 else {
            let reason = String(cString: strerror(errno))
            if errno == EACCES || errno == EROFS { throw RunStoreError.readOnly(path, reason) }
            throw RunStoreError.cannotLock(path + ".lock", reason)
        }
        while flock(lock, LOCK_EX) != 0 && errno == EINTR {}
        do {
            if FileManager.default.fileExists(atPath: path), access(path, W_OK) != 0 {
                throw RunStoreError.readOnly(path, String(cString: strerror(errno)))
            }
            return (try DatabasePool(path: path, configuration: config), lock)
        } catch {
            flock(lock, LOCK_UN); close(lock)
            throw error
        }
    }

    private static func openForReading(_ path: String) throws -> any DatabaseWriter {
        try checkKinds(path)
        guard FileManager.default.fileExists(atPath: path) else { throw RunStoreError.missing(path) }
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(30)
        // Reading a WAL store needs its `-shm` index, which SQLite creates beside the file. In a
        // folder this process may not write, where the last writer closed cleanly (no `-wal`
        // left), the file is complete and unchanging, so it is opened as immutable instead.
        let folder = (path as NSString).deletingLastPathComponent
        let writable = access(folder.isEmpty ? "." : folder, W_OK) == 0
        let shm = FileManager.default.fileExists(atPath: path + "-shm")
        if writable || shm { return try DatabasePool(path: path, configuration: config) }
        if FileManager.default.fileExists(atPath: path + "-wal") { throw RunStoreError.unreadableWAL(path) }
        return try openImmutable(path)
    }

    /// Refuses a file at the store's path that is not a run store: not SQLite at all, or another
    /// application's database (tables, but not this store's). Read without writing anything:
    /// opening it for writing would switch it to WAL and add the migrations' tables.
    static func checkNotForeign(_ path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { return }
        let header = handle.readData(ofLength: 16)
        try? handle.close()
        if header.isEmpty { return }
        guard header == Data("SQLite format 3\0".utf8) else { throw RunStoreError.foreign(path, "not an SQLite file") }
        // A store with unmerged changes (`-wal`, after a crash or a full disk) cannot be read
        // without its log, which only a writer may open; the tables are then looked at after
        // opening, as before. Anything unreadable here is left to the open that follows.
        if FileManager.default.fileExists(atPath: path + "-wal") { return }
        guard
            let tables = try? openImmutable(path).read({
                try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            })
        else { return }
        if tables.isEmpty || (tables.contains("grdb_migrations") && tables.contains("runs")) { return }
        let shown = tables.prefix(4).joined(separator: ", ") + (tables.count > 4 ? ", ..." : "")
        throw RunStoreError.foreign(path, "an SQLite database with the tables \(shown)")
    }

    /// A file that no process changes any more, read without locks or a `-shm` index.
    private static func openImmutable(_ path: String) throws -> any DatabaseWriter {
        var config = Configuration()
        config.readonly = true
        let uri =
            "file:" + (path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? path) + "?immutable=1"
        return try DatabaseQueue(path: uri, configuration: config)
    }

    /// Writes a consistent copy of the whole store to `target` (SQLite's `VACUUM INTO`, under a
    /// temporary name, then renamed), readable with `.snapshot` access while this store goes on
    /// changing: what cluster tasks start from, and what each of them hands back.
    package func writeSnapshot(to target: String) throws {
        try PartialPath.write(target) { partial in
            try db.writeWithoutTransaction { try $0.execute(sql: "VACUUM INTO ?", arguments: [partial]) }
            // A copy is read without locks; it must not claim to be a WAL file with no `-wal` beside it.
            let copy = try DatabaseQueue(path: partial)
            try copy.writeWithoutTransaction { try $0.execute(sql: "PRAGMA journal_mode = DELETE") }
            try copy.close()
        }
    }

    /// Schema versions, oldest first. v1 is the first release; v2 added run durations, parent
    /// links and indexes (a store written by v1 is upgraded in place).
    package static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE runs (
                      id INTEGER PRIMARY KEY AUTOINCREMENT,
                      study TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
                      config_hash TEXT NOT NULL, config_json TEXT NOT NULL,
                      status TEXT NOT NULL, error TEXT, pid INTEGER, host TEXT NOT NULL,
                      created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, directory TEXT NOT NULL);
                    CREATE TABLE params (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                      key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, key));
                    CREATE TABLE metrics (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                      key TEXT NOT NULL, step INTEGER NOT NULL, value REAL NOT NULL, PRIMARY KEY (run_id, key, step));
                    CREATE TABLE artifacts (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                      name TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL, \
                      PRIMARY KEY (run_id, name));
                    CREATE TABLE environments (run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
                      git_commit TEXT, git_dirty INTEGER, host TEXT, os TEXT, swift_version TEXT, blas TEXT, \
                      threads INTEGER, cpu TEXT);
                    """)
        }
        m.registerMigration("v2") { db in
            try db.execute(
                sql: """
                    ALTER TABLE runs ADD COLUMN seconds REAL;
                    ALTER TABLE runs ADD COLUMN parent_id INTEGER REFERENCES runs(id);
                    UPDATE runs SET seconds = (julianday(finished_at) - julianday(started_at)) * 86400.0
                      WHERE finished_at IS NOT NULL AND started_at IS NOT NULL;
                    CREATE INDEX runs_by_hash ON runs(kind, config_hash, status);
                    CREATE INDEX runs_by_study ON runs(study);
                    """)
        }
        m.registerMigration("v3") { db in
            // Studies and which runs each uses: a run reused by a second study (the same dataset
            // or model) belongs to both, under the name and grid values each gave it.
            try db.execute(
                sql: """
                    CREATE TABLE studies (name TEXT PRIMARY KEY, description TEXT NOT NULL, file TEXT NOT NULL,
                      report_json TEXT NOT NULL, updated_at TEXT NOT NULL);
                    CREATE TABLE study_runs (study TEXT NOT NULL, run_id INTEGER NOT NULL REFERENCES runs(id) ON \
                    DELETE CASCADE,
                      name TEXT NOT NULL, grid_json TEXT NOT NULL, used_at TEXT NOT NULL, PRIMARY KEY (study, run_id));
                    """)
            // Older stores: every run belongs to the study that made it, grid values from its params.
            let runs = try Row.fetchAll(db, sql: "SELECT id, study, name, created_at FROM runs")
            for r in runs {
                let id: Int64 = r["id"]
                let grid = try Row.fetchAll(
                    db, sql: "SELECT key, value FROM params WHERE run_id = ? AND key LIKE 'grid.%' ORDER BY key",
                    arguments: [id]
                )
                .map { [String(($0["key"] as String).dropFirst(5)), $0["value"] as String] }
                try db.execute(
                    sql: "INSERT INTO study_runs (study, run_id, name, grid_json, used_at) VALUES (?, ?, ?, ?, ?)",
                    arguments: [
                        r["study"] as String, id, r["name"] as String, Self.json(grid), r["created_at"] as String
                    ])
            }
            for s in try Row.fetchAll(
                db,
                sql: """
                    SELECT r.study, MAX(p.value) AS description FROM runs r LEFT JOIN params p ON p.run_id = r.id \
                    AND p.key = 'study.description'
                    GROUP BY r.study
                    """)
            {
                try db.execute(
                    sql:
                        "INSERT INTO studies (name, description, file, report_json, updated_at) VALUES (?, ?, '', "
                        + "'{}', ?)",
                    arguments: [s["study"] as String, (s["description"] as String?) ?? "", Self.now()])
            }
        }
        m.registerMigration("v4") { db in
            // The kernel policy (portable or native) and the OpenBLAS kernel of each run.
            try db.execute(
                sql: """
                    ALTER TABLE environments ADD COLUMN kernel_mode TEXT;
                    ALTER TABLE environments ADD COLUMN blas_core TEXT;
                    """)
        }
        m.registerMigration("v5") { db in
            // Paths relative to the workspace. Earlier stores kept them as given (relative to the
            // directory spio ran in, or absolute); every one of them lies in a `datasets/`,
            // `models/` or `evaluations/` folder of the workspace, named by a 16-digit hash.
            func relative(_ p: String) -> String {
                guard
                    let r = p.range(
                        of: "(^|/)(datasets|models|evaluations)/[0-9a-f]{16}(/|$)", options: .regularExpression)
                else { return p }
                return String(p[r.lowerBound...]).drop { $0 == "/" }.description
            }
            for row in try Row.fetchAll(db, sql: "SELECT id, directory FROM runs") {
                try db.execute(
                    sql: "UPDATE runs SET directory = ? WHERE id = ?",
                    arguments: [relative(row["directory"]), row["id"] as Int64])
            }
            for row in try Row.fetchAll(db, sql: "SELECT run_id, name, path FROM artifacts") {
                try db.execute(
                    sql: "UPDATE artifacts SET path = ? WHERE run_id = ? AND name = ?",
                    arguments: [relative(row["path"]), row["run_id"] as Int64, row["name"] as String])
            }
        }
        m.registerMigration("v6") { db in
            // A dataset's configuration as JSON: it was the simulation's JSON followed by
            // `,"count":N`, which no JSON reader parses; now {"count": N, "simulation": {...}}
            // (`RunIdentity.Dataset`). Its hash, the dataset's content hash, does not change.
            for row in try Row.fetchAll(db, sql: "SELECT id, config_json FROM runs WHERE kind = 'dataset'") {
                let text: String = row["config_json"]
                guard let r = text.range(of: #",\"count\":([0-9]+)$"#, options: .regularExpression),
                    text.hasPrefix("{")
                else { continue }
                let count = text[r].drop { !$0.isNumber }
                try db.execute(
                    sql: "UPDATE runs SET config_json = ? WHERE id = ?",
                    arguments: ["{\"count\":\(count),\"simulation\":\(text[..<r.lowerBound])}", row["id"] as Int64])
            }
        }
        m.registerMigration("v7") { db in
            // An evaluation's key became the canonical JSON of `RunIdentity.Evaluation` (sorted keys)
            // instead of interpolated text in the order training, set, dataset, metrics. The set's
            // text is the same in both, so each key is rewritten in place and re-hashed: every
            // finished evaluation stays found (its folder keeps the name of the old hash).
            let old = #"^\{"training":"([0-9a-f]{64})","set":(\{.*\}),"dataset":"([0-9a-f,]+)","metrics":([0-9]+)\}$"#
            let pattern = try NSRegularExpression(pattern: old, options: [.dotMatchesLineSeparators])
            for row in try Row.fetchAll(db, sql: "SELECT id, config_json FROM runs WHERE kind = 'evaluate'") {
                let text: String = row["config_json"]
                guard let m = pattern.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) else {
                    continue
                }
                let group = { (i: Int) in String(text[Range(m.range(at: i), in: text)!]) }
                let json =
                    "{\"dataset\":\"\(group(3))\",\"metrics\":\(group(4)),\"set\":\(group(2)),\"training\":\"\(group(1))\"}"
                try db.execute(
                    sql: "UPDATE runs SET config_json = ?, config_hash = ? WHERE id = ?",
                    arguments: [json, SHA256.hex(json), row["id"] as Int64])
            }
        }
        return m
    }

    static func json(_ pairs: [[String]]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: pairs, options: [.sortedKeys]), as: UTF8.self)
    }

    // MARK: studies

    /// A study as last run: its description and its `report` block (canonical JSON).
    package struct Study: Codable, FetchableRecord, PersistableRecord, Sendable {
        package static let databaseTableName = "studies"
        package var name: String, description: String, file: String, reportJSON: String, updatedAt: String
        enum CodingKeys: String, CodingKey {
            case name, description, file, reportJSON = "report_json", updatedAt = "updated_at"
        }
    }

    /// A run as one study uses it.
    package struct StudyRun: Sendable {
        package var run: Run
        /// The name the study gave it (`study[key=value]`, plus a test-set suffix for evaluations).
        package var name: String
        /// Grid and variant values, in the study's order.
        package var grid: [(String, String)]
        /// When the study last used it (ISO 8601).
        package var usedAt: String
    }

    package func saveStudy(name: String, description: String, file: String, reportJSON: String) throws {
        try db.write { db in
            try Study(name: name, description: description, file: file, reportJSON: reportJSON, updatedAt: Self.now())
                .save(db)
        }
    }

    package func study(_ name: String) throws -> Study? { try db.read { try Study.fetchOne($0, key: name) } }

    /// Records that `study` uses run `id` (made by it or reused from another study).
    package func addToStudy(_ study: String, run id: Int64, name: String, grid: [(String, String)]) throws {
        try db.write { db in
            try db.execute(
                sql:
                    "INSERT OR REPLACE INTO study_runs (study, run_id, name, grid_json, used_at) VALUES (?, ?, ?, ?, "
                    + "?)",
                arguments: [study, id, name, Self.json(grid.map { [$0.0, $0.1] }), Self.now()])
        }
    }

    /// The runs a study uses, oldest first.
    /// The studies that use run `id`, by name.
    package func studies(using id: Int64) throws -> [String] {
        try db.read {
            try String.fetchAll(
                $0, sql: "SELECT DISTINCT study FROM study_runs WHERE run_id = ? ORDER BY study", arguments: [id])
        }
    }

    package func studyRuns(_ study: String) throws -> [StudyRun] {
        try db.read { db in
            try Row.fetchAll(
                db,
                sql:
                    "SELECT r.*, s.name AS study_name, s.grid_json, s.used_at FROM study_runs s JOIN runs r ON r.id = "
                    + "s.run_id WHERE s.study = ? ORDER BY r.id",
                arguments: [study]
            ).map { row in
                let pairs =
                    (try? JSONSerialization.jsonObject(with: Data((row["grid_json"] as String).utf8))) as? [[String]]
                    ?? []
                return StudyRun(
                    run: resolved(try Run(row: row)), name: row["study_name"], grid: pairs.map { ($0[0], $0[1]) },
                    usedAt: row["used_at"])
            }
        }
    }

    static func now() -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date())
    }

    package static var hostName: String { PartialPath.hostName }

    // MARK: runs

    /// The newest finished run of this kind and configuration hash.
    package func finished(kind: RunKind, hash: String) throws -> Run? {
        try db.read { reusable(in: try runs(kind: kind, hash: hash, db: $0)) }
    }

    /// The newest finished run of this kind and hash as recorded, whether or not its folder is here
    /// (a store carried to another machine without its datasets and models).
    package func recorded(kind: RunKind, hash: String) throws -> Run? {
        try db.read { try runs(kind: kind, hash: hash, db: $0) }.first { $0.status == .finished }.map(resolved)
    }

    /// An unfinished run of this kind and hash that can be resumed: interrupted, failed, or marked
    /// running by a process of this host that no longer exists (killed).
    package func resumable(kind: RunKind, hash: String) throws -> Run? {
        try db.read { resumable(in: try runs(kind: kind, hash: hash, db: $0)) }.map(resolved)
    }

    /// Every run of one kind and hash, newest first, as stored.
    private func runs(kind: RunKind, hash: String, db: Database) throws -> [Run] {
        try Run.fetchAll(
            db, sql: "SELECT * FROM runs WHERE kind = ? AND config_hash = ? ORDER BY id DESC", arguments: [kind, hash])
    }

    /// The newest finished run whose folder exists, resolved (what `finished` and `claim` reuse).
    private func reusable(in all: [Run]) -> Run? {
        all.map(resolved).first { $0.status == .finished && FileManager.default.fileExists(atPath: $0.directory) }
    }

    /// The newest unfinished run whose process is gone, else a finished run whose folder was
    /// removed (what `resumable` and `claim` take over). Recomputing the finished run in place,
    /// rather than starting a second one, keeps one finished run per hash and its id.
    private func resumable(in all: [Run]) -> Run? {
        all.first { [RunStatus.running, .interrupted, .failed].contains($0.status) && !Self.isLive($0) }
            ?? all.first { $0.status == .finished && !FileManager.default.fileExists(atPath: resolved($0).directory) }
    }

    /// Whether a process with this pid exists (on this host).
    package static func processIsAlive(_ pid: Int) -> Bool { PartialPath.processIsAlive(pid) }

    /// What `claim` found for a configuration hash.
    package enum Claim {
        /// A finished run whose directory exists: reuse it.
        case finished(Run)
        /// A new run, now owned by this process.
        case started(Run)
        /// An unfinished run (interrupted, failed or killed), or a finished one whose folder is gone,
        /// taken over by this process; the status it had.
        case resumed(Run, was: RunStatus)
        /// A run of this hash that another live process is computing: wait for it.
        case busy(Run)
    }

    /// Finds or claims the run of one configuration hash in one immediate transaction, so that of
    /// several processes asking at once exactly one computes it and the others wait or reuse it:
    /// at most one finished run per hash. `force` starts a new run whatever exists.
    package func claim(
        study: String, name: String, kind: RunKind, hash: String, configJSON: String, directory: String,
        parentID: Int64?, force: Bool = false
    ) throws -> Claim {
        try db.writeWithoutTransaction { db in
            var claim: Claim!
            try db.inTransaction(.immediate) {
                let all = try self.runs(kind: kind, hash: hash, db: db)
                if !force, let done = self.reusable(in: all) {
                    claim = .finished(done); return .commit
                }
                let me = Int(getpid())
                if !force, let other = all.first(where: { $0.status == .running && $0.pid != me && Self.isLive($0) }) {
                    claim = .busy(resolved(other)); return .commit
                }
                if !force, var r = self.resumable(in: all) {
                    let was = r.status
                    (r.status, r.pid, r.host, r.error) = (.running, me, Self.hostName, nil)
                    try r.update(db)
                    claim = .resumed(resolved(r), was: was); return .commit
                }
                var run = Run(
                    id: nil, study: study, name: name, kind: kind, configHash: hash, configJSON: configJSON,
                    status: .running,
                    error: nil, pid: me, host: Self.hostName, createdAt: Self.now(), startedAt: Self.now(),
                    finishedAt: nil,
                    seconds: nil, directory: stored(directory), parentID: parentID)
                try run.insert(db)
                claim = .started(resolved(run))
                return .commit
            }
            return claim
        }
    }

    /// Whether a `running` run's process is alive: on this host, its pid exists; a run of another
    /// host is taken as alive (its process cannot be checked from here).
    static func isLive(_ run: Run) -> Bool {
        guard run.status == .running else { return false }
        guard run.host == hostName else { return true }
        return run.pid.map(processIsAlive) ?? false
    }

    /// Inserts a new run in state `running`, owned by this process.
    package func start(
        study: String, name: String, kind: RunKind, hash: String, configJSON: String, directory: String,
        parentID: Int64?
    ) throws -> Run {
        var run = Run(
            id: nil, study: study, name: name, kind: kind, configHash: hash, configJSON: configJSON, status: .running,
            error: nil, pid: Int(getpid()), host: Self.hostName, createdAt: Self.now(), startedAt: Self.now(),
            finishedAt: nil,
            seconds: nil, directory: stored(directory), parentID: parentID)
        try db.write { db in try run.insert(db) }
        return resolved(run)
    }

    package func finish(_ id: Int64) throws {
        let now = Self.now()
        try db.write { db in
            try db.execute(
                sql: """
                    UPDATE runs SET status = 'finished', error = NULL, finished_at = ?,
                      seconds = (julianday(?) - julianday(started_at)) * 86400.0 WHERE id = ?
                    """, arguments: [now, now, id])
        }
    }

    package func fail(_ id: Int64, error: String, interrupted: Bool = false) throws {
        try db.write { db in
            try db.execute(
                sql: "UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                arguments: [interrupted ? "interrupted" : "failed", error, Self.now(), id])
        }
    }

    package func run(_ id: Int64) throws -> Run? { try db.read { try Run.fetchOne($0, key: id) }.map(resolved) }

    /// Runs, newest first, optionally of one study and status.
    package func runs(study: String? = nil, status: RunStatus? = nil, kind: RunKind? = nil) throws -> [Run] {
        var sql = "SELECT * FROM runs WHERE 1", args: [DatabaseValueConvertible] = []
        if let study { sql += " AND study = ?"; args.append(study) }
        if let status { sql += " AND status = ?"; args.append(status) }
        if let kind { sql += " AND kind = ?"; args.append(kind) }
        return try db.read { try Run.fetchAll($0, sql: sql + " ORDER BY id", arguments: StatementArguments(args)) }.map(
            resolved)
    }

    /// Runs of `kind` whose parameter `key` has `value`, oldest first.
    package func runs(kind: RunKind, param key: ParamKey, equals value: String) throws -> [Run] {
        try db.read { db in
            try Run.fetchAll(
                db,
                sql:
                    "SELECT r.* FROM runs r JOIN params p ON p.run_id = r.id WHERE r.kind = ? AND p.key = ? AND "
                    + "p.value = ? ORDER BY r.id",
                arguments: [kind, key.rawValue, value])
        }.map(resolved)
    }

    // MARK: params, metrics, artifacts, environment

    /// Stores the flattened configuration (dotted keys) of a run, replacing what was there.
    package func setParams(_ id: Int64, _ params: [String: String]) throws {
        try db.write { db in
            try db.execute(sql: "DELETE FROM params WHERE run_id = ?", arguments: [id])
            for (k, v) in params.sorted(by: { $0.key < $1.key }) {
                try db.execute(sql: "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)", arguments: [id, k, v])
            }
        }
    }

    package func params(_ id: Int64) throws -> [String: String] {
        try db.read { db in
            Dictionary(
                uniqueKeysWithValues: try Row.fetchAll(
                    db, sql: "SELECT key, value FROM params WHERE run_id = ?", arguments: [id]
                )
                .map { ($0["key"] as String, $0["value"] as String) })
        }
    }

    /// Writes metrics in one transaction, replacing values already stored at the same (key, step):
    /// a resumed run rewrites what it recomputes, never duplicates it.
    package func log(_ id: Int64, _ values: [(key: MetricKey, step: Int, value: Double)]) throws {
        try db.write { db in
            for v in values {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO metrics (run_id, key, step, value) VALUES (?, ?, ?, ?)",
                    arguments: [id, v.key, v.step, v.value])
            }
        }
    }

    package func metrics(_ id: Int64, key: MetricKey? = nil) throws -> [Metric] {
        try db.read { db in
            if let key {
                return try Metric.fetchAll(
                    db, sql: "SELECT * FROM metrics WHERE run_id = ? AND key = ? ORDER BY step", arguments: [id, key])
            }
            return try Metric.fetchAll(
                db, sql: "SELECT * FROM metrics WHERE run_id = ? ORDER BY key, step", arguments: [id])
        }
    }

    static func absolute(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.path }

    /// A path as stored: relative to the workspace when inside it, absolute otherwise.
    func stored(_ p: String) -> String {
        let a = Self.absolute(p), w = workspace + "/"
        return a.hasPrefix(w) ? String(a.dropFirst(w.count)) : a
    }

    /// A stored path made usable from the current directory.
    func resolved(_ p: String) -> String { p.hasPrefix("/") ? p : (workspace as NSString).appendingPathComponent(p) }
    func resolved(_ r: Run) -> Run { var r = r; r.directory = resolved(r.directory); return r }

    /// Records a file of a run with its SHA-256 and size.
    package func addArtifact(_ id: Int64, name: String, path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let hash = SHA256.hex(data)
        try db.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO artifacts (run_id, name, path, sha256, bytes) VALUES (?, ?, ?, ?, ?)",
                arguments: [id, name, stored(path), hash, data.count])
        }
    }

    /// What is wrong with each of a run's recorded files: missing, another size, or another
    /// SHA-256 than recorded (a flipped byte, a truncated or overwritten file). Empty when all match.
    package func verifyArtifacts(_ id: Int64) throws -> [String] {
        try artifacts(id).compactMap { a in
            guard let data = FileManager.default.contents(atPath: a.path) else {
                return "\(a.path): missing (run \(id) recorded \(a.name))"
            }
            if data.count != a.bytes { return "\(a.path): \(data.count) bytes where run \(id) recorded \(a.bytes)" }
            let hash = SHA256.hex(data)
            return hash == a.sha256
                ? nil
                : "\(a.path): SHA-256 \(hash.prefix(16))... where run \(id) recorded \(a.sha256.prefix(16))... (the "
                    + "file changed)"
        }
    }

    package func artifacts(_ id: Int64) throws -> [Artifact] {
        try db.read {
            try Artifact.fetchAll($0, sql: "SELECT * FROM artifacts WHERE run_id = ? ORDER BY name", arguments: [id])
        }
        .map {
            var a = $0; a.path = resolved(a.path); return a
        }
    }

    package func recordEnvironment(_ id: Int64, _ e: RunEnvironment) throws {
        try db.write { db in
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO environments (run_id, git_commit, git_dirty, host, os, swift_version, \
                    blas, threads, cpu,
                      kernel_mode, blas_core)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    id, e.gitCommit, e.gitDirty.map { $0 ? 1 : 0 }, e.host, e.os, e.swiftVersion, e.blas, e.threads,
                    e.cpu,
                    e.kernelMode, e.blasCore
                ])
        }
    }

    /// Makes run `id` a finished copy of run `sourceID` of `source` (a store of the same workspace
    /// that computed it: a cluster task's result): its parameters, metrics, artifacts, environment,
    /// process, host and times. One transaction, so a crash records all of it or none.
    package func record(_ id: Int64, from source: RunStore, run sourceID: Int64) throws {
        guard let r = try source.db.read({ try Run.fetchOne($0, key: sourceID) }) else {
            throw RunStoreError.missing("\(source.path) (run \(sourceID))")
        }
        let tables = ["params", "metrics", "artifacts", "environments"]
        let rows = try source.db.read { db in
            try tables.map { try Row.fetchAll(db, sql: "SELECT * FROM \($0) WHERE run_id = ?", arguments: [sourceID]) }
        }
        try db.write { db in
            for (table, rows) in zip(tables, rows) {
                try db.execute(sql: "DELETE FROM \(table) WHERE run_id = ?", arguments: [id])
                for row in rows {
                    let columns = Array(row.columnNames)
                    let values = columns.map { $0 == "run_id" ? id.databaseValue : row[$0] as DatabaseValue }
                    try db.execute(
                        sql: "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES ("
                            + Array(repeating: "?", count: columns.count).joined(separator: ", ") + ")",
                        arguments: StatementArguments(values))
                }
            }
            try db.execute(
                sql: """
                    UPDATE runs SET status = 'finished', error = NULL, pid = ?, host = ?, started_at = ?,
                      finished_at = ?, seconds = ? WHERE id = ?
                    """, arguments: [r.pid, r.host, r.startedAt, r.finishedAt, r.seconds, id])
        }
    }

    /// Where run `id` was computed, or nil for a run that recorded none.
    package func environment(_ id: Int64) throws -> RunEnvironment? {
        try db.read {
            try RunEnvironment.fetchOne($0, sql: "SELECT * FROM environments WHERE run_id = ?", arguments: [id])
        }
    }
}

package enum RunStoreError: Error, CustomStringConvertible {
    case cannotLock(String, String), newerSchema(String, String, String), olderSchema(String, String)
    case missing(String), empty(String), readOnly(String, String), notAFolder(String), storeIsAFolder(String)
    case cannotCreate(String, String), unreadableWAL(String), foreign(String, String)
    package var description: String {
        switch self {
        case let .foreign(path, what):
            return "\(path): not a DeepSPIO-Lab run store (\(what)); it was left untouched: move it, or give another "
                + "--workspace"
        case let .cannotLock(path, reason): return "\(path): cannot open the store's lock file: \(reason)"
        case let .olderSchema(path, missing):
            return "\(path): written by an older DeepSPIO-Lab (no schema migration '\(missing)'); "
                + "run any writing command on it once (e.g. `spio run`) to upgrade it in place"
        case let .missing(path): return "\(path): no run store here (run a study first, or give --workspace)"
        case let .readOnly(path, reason):
            return
                "\(path): the workspace is read-only (\(reason)); reading commands (runs, show, compare, report, "
                + "verify) "
                + "work on it, running needs a writable workspace (--workspace)"
        case let .notAFolder(path): return "\(path): the workspace is a file, not a folder"
        case let .empty(path): return "\(path): the store is empty (no runs yet)"
        case let .storeIsAFolder(path): return "\(path): a folder where the run store's file belongs; move it away"
        case let .cannotCreate(path, reason): return "\(path): cannot create the workspace: \(reason)"
        case let .unreadableWAL(path):
            return
                "\(path): the store has unmerged changes (\((path as NSString).lastPathComponent)-wal) in a folder "
                + "this "
                + "process cannot write, so SQLite cannot read it consistently; open it once where it is writable"
        case let .newerSchema(path, found, newest):
            return
                "\(path): written by a newer DeepSPIO-Lab (schema migration '\(found)'; this version knows up to "
                + "'\(newest)'); use that version or a new workspace"
        }
    }
}
