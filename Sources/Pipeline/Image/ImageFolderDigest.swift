import Cache
import Foundation

/// The content of the image files beside a data file, as one hash, so the `pixels` stages (and
/// everything after them) rerun when an image changes even though the CSV naming it did not.
///
/// Every PNG/JPEG file under the data file's folder (recursively, hidden folders such as
/// `.runpipe/` skipped) is hashed with its relative path; the stat cache makes unchanged files
/// cost one `stat`. Images outside the folder (`allow_outside: true`) are not covered; cells
/// holding bytes or base64 are covered by the data file's own hash.
enum ImageFolderDigest {
    static let extensions: Set<String> = ["png", "jpg", "jpeg", "jpe", "jfif"]

    static func digest(folder: URL, hasher: FileHasher) throws -> String {
        let root = folder.standardizedFileURL.resolvingSymlinksInPath()
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey],
                                                           options: [.skipsHiddenFiles]) else {
            return try JSONValue.array([]).digest()
        }
        var files: [(String, URL)] = []
        let prefix = root.path.hasSuffix("/") ? root.path : root.path + "/"
        for case let url as URL in walker where extensions.contains(url.pathExtension.lowercased()) {
            let path = url.standardizedFileURL.resolvingSymlinksInPath().path
            files.append((path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path, url))
        }
        files.sort { $0.0 < $1.0 }
        var parts: [JSONValue] = []
        parts.reserveCapacity(files.count)
        try hasher.deferringSaves {
            for (name, url) in files { parts.append(.array([.string(name), .string(try hasher.hash(of: url))])) }
        }
        return try JSONValue.array(parts).digest()
    }
}
