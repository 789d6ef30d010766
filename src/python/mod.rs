//! The Python binding (feature `python`): the `corpusql._corpusql`
//! extension module that `python/corpusql/` wraps.

use pyo3::prelude::*;

#[pymodule]
fn _corpusql(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
