// Where one image of a table cell comes from, and why a cell could not be read as images.

import Foundation

/// Where one image of a cell comes from.
public enum ImageSource: Sendable, Equatable {
    /// A file, already resolved against the data folder.
    case file(URL)
    /// Encoded image bytes carried in the cell (data URI or bare base64).
    case bytes([UInt8])
}

/// Why a cell could not be turned into image sources.
public enum ImageCellError: Error, CustomStringConvertible, Equatable {
    /// The cell is empty, blank, or only `;` separators.
    case emptyCell
    /// A path (absolute, or with `..`, or through a symlink) resolves outside the data folder.
    case outsideFolder(path: String, folder: String)
    /// A `data:` URI whose payload is not valid base64.
    case badBase64(String)
    /// A `data:` URI that is not a base64-encoded image (`detail` says what is wrong).
    case badDataURI(String)
    /// An http(s)/s3/gs URL: runpipe reads local files only.
    case remoteURL(String)
    /// A path that cannot name a file (e.g. it contains a NUL character).
    case invalidPath(String)

    public var description: String {
        switch self {
        case .emptyCell:
            return "the image cell is empty"
        case .outsideFolder(let path, let folder):
            return "image path \"\(path)\" is outside the data folder \(folder); "
                + "set processors.image.allow_outside: true to allow it"
        case .badBase64(let detail):
            return "the image data URI does not hold valid base64 (\(detail))"
        case .badDataURI(let detail):
            return "the cell is a data URI but not a base64-encoded image: \(detail)"
        case .remoteURL(let url):
            return "image \"\(ImageCell.abbreviated(url))\" is a remote URL; runpipe reads local files only — "
                + "download the images and refer to them by path"
        case .invalidPath(let path):
            return "image path \"\(ImageCell.abbreviated(path))\" cannot name a file"
        }
    }
}
