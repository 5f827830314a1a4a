import { createRequire as __WEBPACK_EXTERNAL_createRequire } from "module";
export const id = 969;
export const ids = [969];
export const modules = {

/***/ 8969:
/***/ ((module, __unused_webpack_exports, __webpack_require__) => {

function __ncc_wildcard$0 (arg) {
  if (arg === "Release") return __webpack_require__(2737);
  else if (arg === "Release/obj.target") return __webpack_require__(6166);
}
const buildType =
  process.config.target_defaults?.default_configuration ?? 'Release';
module.exports = __ncc_wildcard$0(buildType);


/***/ }),

/***/ 2737:
/***/ ((module, __unused_webpack_exports, __webpack_require__) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)(__webpack_require__.ab + "build/Release/binding.node")

/***/ }),

/***/ 6166:
/***/ ((module, __unused_webpack_exports, __webpack_require__) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)(__webpack_require__.ab + "build/Release/obj.target/binding.node")

/***/ })

};
