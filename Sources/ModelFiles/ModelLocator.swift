import Foundation

/// Resolves a `--model` argument to a folder on this machine, offline.
///
/// `X` naming an existing file or folder (absolute, relative to `currentDirectory`, or `~/…`) is
/// used as is. Otherwise `X` must be a Hugging Face hub id, `org/name` or `org/name@revision`,
/// looked up in the local hub cache exactly as `huggingface_hub` lays it out:
///
/// - root: `$HF_HUB_CACHE`, else `$HUGGINGFACE_HUB_CACHE` (legacy), else `$HF_HOME/hub`, else
///   `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`;
/// - repo folder `models--org--name`;
/// - revision: 40 hex digits are a commit; anything else (default `main`) is a ref whose file
///   `refs/<revision>` holds the commit; when no revision was given and `refs/main` is missing
///   but exactly one snapshot exists, that snapshot is used;
/// - the folder is `snapshots/<commit>/`, whose files are symlinks into `blobs/` (followed by
///   every reader).
///
/// Nothing touches the network. A miss throws `modelNotFound` listing every place looked at and
/// how to get the model.
public struct ModelLocator: Sendable {
    /// Where a resolved model came from.
    public enum Origin: Sendable, Equatable {
        /// A path given on the command line.
        case path
        /// The hub cache: the repo id, the revision asked for (nil: default) and the commit used.
        case hubCache(repo: String, revision: String?, commit: String)
    }

    public struct Resolved: Sendable, Equatable {
        /// The model folder (or file, when a file path was given).
        public let url: URL
        public let origin: Origin
    }

    public let environment: [String: String]
    public let homeDirectory: URL
    public let currentDirectory: URL

    public init(environment: [String: String] = ProcessInfo.processInfo.environment,
                homeDirectory: URL = FileManager.default.homeDirectoryForCurrentUser,
                currentDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)) {
        (self.environment, self.homeDirectory, self.currentDirectory) = (environment, homeDirectory, currentDirectory)
    }

    /// The hub cache root this environment selects.
    public var hubCacheRoot: URL {
        func value(_ key: String) -> String? {
            guard let v = environment[key], !v.isEmpty else { return nil }
            return v
        }
        if let cache = value("HF_HUB_CACHE") ?? value("HUGGINGFACE_HUB_CACHE") { return expand(cache) }
        if let home = value("HF_HOME") { return expand(home).appendingPathComponent("hub", isDirectory: true) }
        if let xdg = value("XDG_CACHE_HOME") {
            return expand(xdg).appendingPathComponent("huggingface/hub", isDirectory: true)
        }
        return homeDirectory.appendingPathComponent(".cache/huggingface/hub", isDirectory: true)
    }

    /// The cache folder of a repo id (`org/name` → `models--org--name`).
    public func repoFolder(_ repo: String) -> URL {
        hubCacheRoot.appendingPathComponent("models--" + repo.replacingOccurrences(of: "/", with: "--"), isDirectory: true)
    }

    /// Splits `org/name@revision` into the repo id and the revision; nil when `text` is not a
    /// well-formed hub id (one or two parts of letters, digits, `-`, `_`, `.`; no `--` or `..`;
    /// not starting or ending with `-` or `.`).
    public static func parseHubID(_ text: String) -> (repo: String, revision: String?)? {
        var repo = Substring(text), revision: String?
        if let at = text.firstIndex(of: "@") {
            repo = text[..<at]
            let rev = text[text.index(after: at)...]
            guard !rev.isEmpty, !rev.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0.isEmpty || $0 == ".." || $0 == "." }) else {
                return nil
            }
            revision = String(rev)
        }
        let parts = repo.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy(isValidRepoPart) else { return nil }
        return (String(repo), revision)
    }

    private static func isValidRepoPart(_ part: Substring) -> Bool {
        guard let first = part.first, let last = part.last, part.count <= 96,
              !"-.".contains(first), !"-.".contains(last),
              !part.contains("--"), !part.contains("..") else { return false }
        return part.utf8.allSatisfy { b in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b)
                || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") || b == UInt8(ascii: ".")
        }
    }

    /// Resolves `model` (see the type's documentation).
    public func resolve(_ model: String) throws -> Resolved {
        let local = expand(model)
        if FileManager.default.fileExists(atPath: local.path) {
            return Resolved(url: local, origin: .path)
        }
        var searched = ["\(local.path) (no such file or folder)"]
        guard let (repo, revision) = ModelLocator.parseHubID(model) else {
            throw ModelFilesError.modelNotFound(id: model, searched: searched,
                                                hint: "pass a diffusers folder, or a Hugging Face id such as stabilityai/sd-turbo")
        }
        let hint = """
            the hub cache is used offline, nothing is downloaded. Fetch it on a machine with network: \
            `huggingface-cli download \(repo)` (or `hf download \(repo)`), then copy its cache folder here \
            or point HF_HOME / HF_HUB_CACHE at it; or pass the model folder itself with --model.
            """
        let repoDir = repoFolder(repo)
        let snapshots = repoDir.appendingPathComponent("snapshots", isDirectory: true)
        guard isDirectory(repoDir) else {
            searched.append("\(repoDir.path) (hub cache, no such folder)")
            throw ModelFilesError.modelNotFound(id: model, searched: searched, hint: hint)
        }
        let commit: String
        if let revision, ModelLocator.isCommitHash(revision) {
            commit = revision
        } else {
            let refFile = repoDir.appendingPathComponent("refs").appendingPathComponent(revision ?? "main")
            if let text = try? String(contentsOf: refFile, encoding: .utf8) {
                let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
                guard ModelLocator.isCommitHash(trimmed) else {
                    throw ModelFilesError.badConfig(path: refFile.path, reason: "does not hold a 40-hex commit hash")
                }
                commit = trimmed
            } else if revision == nil, let only = singleSnapshot(in: snapshots) {
                commit = only
            } else {
                searched.append("\(refFile.path) (no such ref)")
                if revision == nil { searched.append("\(snapshots.path) (not exactly one snapshot)") }
                throw ModelFilesError.modelNotFound(id: model, searched: searched, hint: hint)
            }
        }
        let folder = snapshots.appendingPathComponent(commit, isDirectory: true)
        guard isDirectory(folder) else {
            searched.append("\(folder.path) (snapshot missing)")
            throw ModelFilesError.modelNotFound(id: model, searched: searched, hint: hint)
        }
        return Resolved(url: folder, origin: .hubCache(repo: repo, revision: revision, commit: commit))
    }

    // MARK: helpers

    static func isCommitHash(_ text: String) -> Bool {
        text.utf8.count == 40 && text.utf8.allSatisfy {
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
        }
    }

    private func singleSnapshot(in snapshots: URL) -> String? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: snapshots.path) else { return nil }
        let commits = names.filter { ModelLocator.isCommitHash($0) && isDirectory(snapshots.appendingPathComponent($0)) }
        return commits.count == 1 ? commits[0] : nil
    }

    private func isDirectory(_ url: URL) -> Bool {
        var flag: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &flag) && flag.boolValue
    }

    /// A path from the user: `~` and `~/…` expand to the home directory, relative paths are taken
    /// from the current directory.
    private func expand(_ path: String) -> URL {
        if path == "~" { return homeDirectory }
        if path.hasPrefix("~/") { return homeDirectory.appendingPathComponent(String(path.dropFirst(2))) }
        if path.hasPrefix("/") { return URL(fileURLWithPath: path) }
        return URL(fileURLWithPath: path, relativeTo: currentDirectory).standardizedFileURL
    }
}
