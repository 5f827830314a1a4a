import { createRequire as __WEBPACK_EXTERNAL_createRequire } from "module";
export const id = 857;
export const ids = [857];
export const modules = {

/***/ 2857:
/***/ ((module, __unused_webpack_exports, __webpack_require__) => {

function __ncc_wildcard$0 (arg) {
  if (arg === "Release") return __webpack_require__(3707);
  else if (arg === "Release/obj.target") return __webpack_require__(8648);
}
const buildType =
  process.config.target_defaults?.default_configuration ?? 'Release';
module.exports = __ncc_wildcard$0(buildType);


/***/ }),

/***/ 3707:
/***/ ((module, __unused_webpack_exports, __webpack_require__) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)(__webpack_require__.ab + "build/Release/binding.node")

/***/ }),

/***/ 8648:
/***/ ((module, __unused_webpack_exports, __webpack_require__) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)(__webpack_require__.ab + "build/Release/obj.target/binding.node")

/***/ })

};
