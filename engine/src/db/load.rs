//! Walks database files and directories, dispatches by extension, and names every error `FILE:LINE`.
