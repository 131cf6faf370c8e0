"""Development helpers (not shipped): build test modules, rootfs trees and bundles."""
